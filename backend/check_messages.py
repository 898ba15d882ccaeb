"""Catalog entries for the quality checks: per check a `title`, a message per outcome, `why` it matters
in plain words, and the suggested `fix`. Merged into backend/messages.py's catalog."""

EN: dict[str, str] = {
    "check.too_few_rows.title": "Enough rows",
    "check.too_few_rows.ok": "{rows:,} rows.",
    "check.too_few_rows.fail": "{rows:,} rows; at least {min} are needed.",
    "check.too_few_rows.why": "A model learns from examples. With very few rows it can only memorise them, and the "
    "test split is too small to say how well it works.",
    "check.too_few_rows.fix": "Collect more data: at least 30 rows, ideally thousands.",
    "check.target_usable.title": "Usable target",
    "check.target_usable.ok": "Target '{target}' is usable.",
    "check.target_usable.none": "No target column chosen.",
    "check.target_usable.empty": "Target '{target}' is empty in every row.",
    "check.target_usable.not_numeric": "Target '{target}' is not numeric, so it cannot be predicted as a number.",
    "check.target_usable.missing": "Target '{target}' is missing in {n:,} rows; they are left out of training.",
    "check.target_usable.why": "Every training row needs the answer the model should learn to give. Regression "
    "predicts a quantity, so its target must be a number.",
    "check.target_usable.fix": "Pick another target on the Data page, switch the task, or fill in the missing "
    "answers and upload again.",
    "check.too_few_classes.title": "Enough examples of each class",
    "check.too_few_classes.ok": "{n} classes, the smallest with {smallest:,} rows.",
    "check.too_few_classes.na": "Not a classification target.",
    "check.too_few_classes.one": "Target '{target}' has only {n} class; a classifier needs at least 2.",
    "check.too_few_classes.rare": "Classes with fewer than {min} rows ({n}): {names}.",
    "check.too_few_classes.why": "To learn to tell classes apart the model needs several examples of each, and "
    "the test split needs some too.",
    "check.too_few_classes.fix": "Collect more examples of the rare classes, merge them into a broader class, or "
    "drop them.",
    "check.missing_values.title": "Missing values",
    "check.missing_values.ok": "No missing values.",
    "check.missing_values.some": "Columns with some missing values: {n}; the gaps are filled in.",
    "check.missing_values.heavy": "Columns more than {share} empty ({n}): {names}.",
    "check.missing_values.why": "Empty cells are filled with a typical value (the median, or an 'unknown' "
    "category) so the row can still be used, but a mostly empty column carries little information.",
    "check.missing_values.fix": "Drop columns that are mostly empty, or collect the missing values.",
    "check.duplicate_rows.title": "Duplicate rows",
    "check.duplicate_rows.ok": "No duplicate rows.",
    "check.duplicate_rows.fail": "{n:,} rows ({share}) are exact copies of another row.",
    "check.duplicate_rows.why": "Copies can land in both the training and the test split, which makes the model "
    "look better than it is.",
    "check.duplicate_rows.fix": "Remove the duplicate rows (keep the first of each).",
    "check.constant_columns.title": "Constant columns",
    "check.constant_columns.ok": "No constant columns.",
    "check.constant_columns.fail": "Columns with the same value in every row ({n}): {names}.",
    "check.constant_columns.why": "A column that never changes cannot help tell rows apart.",
    "check.constant_columns.fix": "Nothing to do: training ignores these columns. Drop them to keep the data tidy.",
    "check.target_leakage.title": "Target leakage",
    "check.target_leakage.na": "Not checked: there is no usable target.",
    "check.target_leakage.ok": "No single column predicts '{target}' on its own.",
    "check.target_leakage.fail": "Columns that alone predict '{target}' almost perfectly ({n}): {names}.",
    "check.target_leakage.why": "A column that gives the answer away is usually recorded after the fact (a "
    "cancellation date for churn, a copy or code of the target). The model learns to read it, every metric looks "
    "excellent, and the model fails on new data, where that column is not known yet.",
    "check.target_leakage.fix": "Drop the column, unless it will really be known when the prediction is made.",
    "check.conflicting_labels.title": "Conflicting labels",
    "check.conflicting_labels.na": "Not a classification target.",
    "check.conflicting_labels.ok": "No rows with identical features and different targets.",
    "check.conflicting_labels.fail": "{n:,} rows in {groups:,} groups have identical features but a different "
    "'{target}'.",
    "check.conflicting_labels.why": "When two rows look exactly the same but have different answers, at most one of "
    "them can be right for the model: either a label is wrong, or the columns miss what tells them apart.",
    "check.conflicting_labels.fix": "Check the example rows and correct the wrong labels, or drop the conflicting "
    "rows; if both answers are genuine, collect a column that tells them apart.",
    "check.id_like_columns.title": "Identifier columns",
    "check.id_like_columns.ok": "No identifier columns.",
    "check.id_like_columns.fail": "Columns that look like identifiers ({n}): {names}.",
    "check.id_like_columns.why": "A customer number or order code is different in every row, so it says nothing "
    "about new rows. At best the model ignores it; at worst it memorises it, or picks up the order the rows were "
    "entered in.",
    "check.id_like_columns.fix": "Drop the identifier columns (keep them outside the model to look rows up).",
    "check.mixed_types.title": "Numbers mixed with text",
    "check.mixed_types.ok": "No column mixes numbers and text.",
    "check.mixed_types.fail": "Columns mixing numbers and text ({n}): {names}.",
    "check.mixed_types.why": "A few text entries such as 'n/a' or 'unknown' in a column of numbers turn the whole "
    "column into text: the model then treats 12 and 13 as unrelated labels instead of nearby amounts.",
    "check.mixed_types.fix": "Replace the text entries with empty cells (or the right numbers) in the source file, "
    "so the column is read as numbers, and upload it again.",
    "check.class_imbalance.title": "Class balance",
    "check.class_imbalance.na": "Not a classification target.",
    "check.class_imbalance.ok": "The smallest class, '{name}', has {smallest:,} rows ({share} of all).",
    "check.class_imbalance.fail": "The smallest class, '{name}', has {smallest:,} rows ({share} of all), "
    "{ratio} of the largest, '{largest_name}' ({largest:,}).",
    "check.class_imbalance.why": "With few examples of a class, the model sees it rarely and learns to predict the "
    "common classes; accuracy can look high while the rare class, often the one that matters, is mostly missed.",
    "check.class_imbalance.fix": "Collect more examples of the rare class if you can, and judge the model by "
    "per-class recall, F1 or ROC AUC rather than accuracy.",
    "check.label_errors.title": "Suspected label errors",
    "check.label_errors.na": "Not checked: not a classification target, or no column to learn from.",
    "check.label_errors.small": "Too few labelled rows to judge the labels (at least {min} are needed).",
    "check.label_errors.ok": "No label looks wrong ({sampled:,} rows checked).",
    "check.label_errors.few": "{n:,} rows ({share}) may be mislabelled: few enough to be ordinary noise "
    "({sampled:,} rows checked).",
    "check.label_errors.fail": "{n:,} rows ({share}) look mislabelled: a model trained on the other rows "
    "confidently predicts another class ({sampled:,} rows checked).",
    "check.label_errors.why": "A model learns from the labels it is given. Wrong labels teach it wrong answers and "
    "make its test scores unreliable. Rows whose features strongly point to another class are worth a second look.",
    "check.label_errors.fix": "Review the suspected rows on the Labeling page: keep the label or change it to the "
    "suggested class.",
    "check.split_drift.title": "Training and test rows alike",
    "check.split_drift.na": "Not checked: there is no usable target to split on.",
    "check.split_drift.ok": "The test rows look like the training rows in all {n} columns compared.",
    "check.split_drift.fail": "The test rows differ clearly from the training rows in {n} columns: {names}.",
    "check.split_drift.why": "The model is scored on the test rows. If they differ from the rows it learned from, "
    "the score says little about how it will do on new data.",
    "check.split_drift.fix": "Check the columns named here for unusual values (a few extreme rows that all landed in "
    "the test split can cause this), and use more data if you can: small test splits differ by chance.",
    "check.high_cardinality.title": "Categories with very many values",
    "check.high_cardinality.ok": "No category column with very many values.",
    "check.high_cardinality.fail": "Category columns with very many different values ({n}): {names}.",
    "check.high_cardinality.why": "A category the model has seen only once or twice teaches it nothing, and values "
    "it has never seen cannot help at all. Dates and times stored as text often look like this.",
    "check.high_cardinality.fix": "Group rare values into broader ones (for example a city into a region), turn "
    "dates into parts such as year and month, or drop the column.",
    "check.near_constant_columns.title": "Nearly constant columns",
    "check.near_constant_columns.ok": "No nearly constant columns.",
    "check.near_constant_columns.fail": "Columns where one value fills at least {share} of the rows ({n}): {names}.",
    "check.near_constant_columns.why": "A column that almost never changes carries very little information, and "
    "its few other values are too rare to learn from.",
    "check.near_constant_columns.fix": "Drop these columns unless the rare values matter to you.",
    "check.numeric_outliers.title": "Extreme values",
    "check.numeric_outliers.ok": "No extreme values in the numeric columns.",
    "check.numeric_outliers.fail": "{rows:,} extreme values in {n} numeric columns: {names}.",
    "check.numeric_outliers.why": "Values far outside the usual range are often typing errors or placeholders such "
    "as 99999 or -1, and a few of them can pull a model off course. Some are genuine, such as very large orders.",
    "check.numeric_outliers.fix": "Look at the example rows: correct or remove the values that are errors, and keep "
    "the genuine ones.",
}

ZH: dict[str, str] = {
    "check.too_few_rows.title": "行数是否足够",
    "check.too_few_rows.ok": "共 {rows:,} 行。",
    "check.too_few_rows.fail": "只有 {rows:,} 行；至少需要 {min} 行。",
    "check.too_few_rows.why": "模型从样本中学习。行数太少时它只能死记硬背，测试集也太小，无法说明模型效果。",
    "check.too_few_rows.fix": "收集更多数据：至少 30 行，最好数千行。",
    "check.target_usable.title": "目标列是否可用",
    "check.target_usable.ok": "目标列“{target}”可用。",
    "check.target_usable.none": "尚未选择目标列。",
    "check.target_usable.empty": "目标列“{target}”在所有行中都为空。",
    "check.target_usable.not_numeric": "目标列“{target}”不是数值，无法作为数值来预测。",
    "check.target_usable.missing": "目标列“{target}”有 {n:,} 行缺失，这些行不参与训练。",
    "check.target_usable.why": "每一条训练数据都需要给出模型应学会的答案。回归预测的是数量，所以目标列必须是数值。",
    "check.target_usable.fix": "在“数据”页换一个目标列、切换任务类型，或补全缺失的答案后重新上传。",
    "check.too_few_classes.title": "每个类别的样本是否足够",
    "check.too_few_classes.ok": "共 {n} 个类别，最小的类别有 {smallest:,} 行。",
    "check.too_few_classes.na": "不是分类目标。",
    "check.too_few_classes.one": "目标列“{target}”只有 {n} 个类别；分类至少需要 2 个。",
    "check.too_few_classes.rare": "有 {n} 个类别少于 {min} 行：{names}。",
    "check.too_few_classes.why": "要学会区分类别，模型需要每个类别的若干样本，测试集里也需要一些。",
    "check.too_few_classes.fix": "为稀有类别收集更多样本、把它们合并为更宽泛的类别，或删除它们。",
    "check.missing_values.title": "缺失值",
    "check.missing_values.ok": "没有缺失值。",
    "check.missing_values.some": "有 {n} 列存在缺失值，训练时会自动填补。",
    "check.missing_values.heavy": "有 {n} 列超过 {share} 为空：{names}。",
    "check.missing_values.why": "空单元格会用典型值（中位数或“未知”类别）填补，使该行仍可使用；但大部分为空的列几乎不含信息。",
    "check.missing_values.fix": "删除大部分为空的列，或补充收集缺失的数据。",
    "check.duplicate_rows.title": "重复行",
    "check.duplicate_rows.ok": "没有重复行。",
    "check.duplicate_rows.fail": "有 {n:,} 行（{share}）与其他行完全相同。",
    "check.duplicate_rows.why": "重复的行可能同时出现在训练集和测试集中，让模型看起来比实际更好。",
    "check.duplicate_rows.fix": "删除重复行（每组保留第一行）。",
    "check.constant_columns.title": "常量列",
    "check.constant_columns.ok": "没有常量列。",
    "check.constant_columns.fail": "有 {n} 列在每一行中取值都相同：{names}。",
    "check.constant_columns.why": "从不变化的列无法帮助区分不同的行。",
    "check.constant_columns.fix": "无需处理：训练会忽略这些列。删除它们可让数据更整洁。",
    "check.target_leakage.title": "目标泄漏",
    "check.target_leakage.na": "未检查：没有可用的目标列。",
    "check.target_leakage.ok": "没有哪一列能单独预测出“{target}”。",
    "check.target_leakage.fail": "有 {n} 列单独就几乎能完美预测“{target}”：{names}。",
    "check.target_leakage.why": "能直接透露答案的列，通常是事后才记录的信息（例如流失预测中的退订日期，或目标列的副本、编码）。"
    "模型会学会直接读取它，各项指标看起来都很出色，但在新数据上会失效，因为预测时这一列还不知道。",
    "check.target_leakage.fix": "删除该列，除非在做预测时它确实已经可知。",
    "check.conflicting_labels.title": "标签冲突",
    "check.conflicting_labels.na": "不是分类目标。",
    "check.conflicting_labels.ok": "没有特征完全相同但目标不同的行。",
    "check.conflicting_labels.fail": "有 {n:,} 行（共 {groups:,} 组）特征完全相同，但“{target}”不同。",
    "check.conflicting_labels.why": "两行看起来一模一样、答案却不同时，对模型来说最多只有一个是对的：要么有标签写错了，"
    "要么现有的列缺少能区分它们的信息。",
    "check.conflicting_labels.fix": "查看示例行并改正错误的标签，或删除这些相互冲突的行；如果两种答案都属实，请补充能区分它们的列。",
    "check.id_like_columns.title": "编号列",
    "check.id_like_columns.ok": "没有编号类的列。",
    "check.id_like_columns.fail": "有 {n} 列看起来是编号：{names}。",
    "check.id_like_columns.why": "客户编号、订单号之类的值每一行都不同，对新数据毫无参考价值。模型最好的情况是忽略它，"
    "最坏的情况是把它死记下来，或从中学到数据录入的先后顺序。",
    "check.id_like_columns.fix": "删除编号列（可在模型之外保留它们用于查找记录）。",
    "check.mixed_types.title": "数字与文字混杂",
    "check.mixed_types.ok": "没有数字与文字混杂的列。",
    "check.mixed_types.fail": "有 {n} 列数字与文字混杂：{names}。",
    "check.mixed_types.why": "数字列中只要混入少量“n/a”“未知”之类的文字，整列就会被当作文字处理：模型会把 12 和 13 "
    "看成毫不相干的标签，而不是相近的数量。",
    "check.mixed_types.fix": "在源文件中把这些文字改为空白（或正确的数字），让该列按数字读取，然后重新上传。",
    "check.class_imbalance.title": "类别是否均衡",
    "check.class_imbalance.na": "不是分类目标。",
    "check.class_imbalance.ok": "最小的类别“{name}”有 {smallest:,} 行（占全部的 {share}）。",
    "check.class_imbalance.fail": "最小的类别“{name}”只有 {smallest:,} 行（占全部的 {share}），"
    "仅为最大类别“{largest_name}”（{largest:,} 行）的 {ratio}。",
    "check.class_imbalance.why": "某个类别的样本很少时，模型很少见到它，往往只学会预测常见的类别；准确率看起来可能很高，"
    "但稀有类别（往往正是最重要的那一类）大多会被漏掉。",
    "check.class_imbalance.fix": "尽可能为稀有类别收集更多样本，并用各类别的召回率、F1 或 ROC AUC 而不是准确率来评价模型。",
    "check.label_errors.title": "疑似标注错误",
    "check.label_errors.na": "未检查：不是分类目标，或没有可供学习的列。",
    "check.label_errors.small": "已标注的行太少，无法判断标签是否有误（至少需要 {min} 行）。",
    "check.label_errors.ok": "没有发现疑似错误的标签（检查了 {sampled:,} 行）。",
    "check.label_errors.few": "有 {n:,} 行（{share}）可能标注有误，数量不多，属于正常的噪声范围（检查了 {sampled:,} 行）。",
    "check.label_errors.fail": "有 {n:,} 行（{share}）疑似标注错误：用其余数据训练的模型很有把握地预测为另一个类别"
    "（检查了 {sampled:,} 行）。",
    "check.label_errors.why": "模型从给定的标签中学习。错误的标签会教给它错误的答案，也会让测试得分不可靠。"
    "特征明显指向另一个类别的行值得再核对一遍。",
    "check.label_errors.fix": "在“标注”页逐条复核这些可疑的行：保留原标签，或改为建议的类别。",
    "check.split_drift.title": "训练集与测试集是否一致",
    "check.split_drift.na": "未检查：没有可用于划分数据的目标列。",
    "check.split_drift.ok": "在比较的全部 {n} 列中，测试集与训练集的数据分布一致。",
    "check.split_drift.fail": "测试集在 {n} 列上与训练集明显不同：{names}。",
    "check.split_drift.why": "模型的得分是在测试集上算出来的。如果测试集与模型学习用的数据不同，这个得分就很难说明模型在新数据上的表现。",
    "check.split_drift.fix": "检查这里列出的列中是否有异常值（少数极端的行恰好都被分到测试集时就会出现这种情况）；如有可能，请使用更多数据：测试集太小时，差异可能纯属偶然。",
    "check.high_cardinality.title": "取值过多的类别列",
    "check.high_cardinality.ok": "没有取值过多的类别列。",
    "check.high_cardinality.fail": "有 {n} 个类别列的不同取值非常多：{names}。",
    "check.high_cardinality.why": "只出现过一两次的类别对模型没有帮助，从未见过的取值更是毫无用处。以文字形式存储的日期和时间常常属于这种情况。",
    "check.high_cardinality.fix": "把稀有取值归并为更宽泛的类别（例如把城市归为地区），把日期拆成年、月等部分，或删除该列。",
    "check.near_constant_columns.title": "几乎不变的列",
    "check.near_constant_columns.ok": "没有几乎不变的列。",
    "check.near_constant_columns.fail": "有 {n} 列中某一个值占了至少 {share} 的行：{names}。",
    "check.near_constant_columns.why": "几乎从不变化的列所含信息极少，其余少数取值又太稀少，模型无从学习。",
    "check.near_constant_columns.fix": "删除这些列，除非那些少见的取值对你很重要。",
    "check.numeric_outliers.title": "极端值",
    "check.numeric_outliers.ok": "数值列中没有极端值。",
    "check.numeric_outliers.fail": "{n} 个数值列中共有 {rows:,} 个极端值：{names}。",
    "check.numeric_outliers.why": "远远超出常见范围的数值往往是录入错误或 99999、-1 之类的占位值，少数几个就可能把模型带偏。"
    "但也有一些是真实的，比如特别大的订单。",
    "check.numeric_outliers.fix": "查看示例行：改正或删除属于错误的数值，保留真实的数值。",
}
