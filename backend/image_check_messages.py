"""Catalog entries for the image checks (backend/image_checks.py); see backend/check_messages.py for the
pattern. Both languages have the same keys and the same placeholders (tests/test_images.py checks)."""

EN: dict[str, str] = {
    "check.undecodable_images.title": "Images that cannot be opened",
    "check.undecodable_images.ok": "All {images:,} images open correctly.",
    "check.undecodable_images.fail": "{n:,} files cannot be opened as images: {names}.",
    "check.undecodable_images.why": "A damaged or misnamed file (a half-copied photo, a PDF renamed .jpg) cannot be "
    "shown to the model: training would stop at it, or skip it without saying so.",
    "check.undecodable_images.fix": "Drop these files, or replace them with copies that open and upload again.",
    "check.too_few_images.title": "Enough images",
    "check.too_few_images.ok": "{n:,} images.",
    "check.too_few_images.fail": "Only {n:,} images open; at least {min} are needed.",
    "check.too_few_images.why": "A model learns what each class looks like from many examples. With a handful of "
    "images it can only memorise them, and the test set is too small to say whether it works.",
    "check.too_few_images.fix": "Collect more images: at least 30, ideally hundreds per class.",
    "check.image_class_balance.title": "Images per class",
    "check.image_class_balance.none": "No image has a label. Put the images in one folder per class.",
    "check.image_class_balance.one": "Every image is in one class, '{name}'; a classifier needs at least 2.",
    "check.image_class_balance.rare": "Classes with fewer than {min} images ({n}): {names}.",
    "check.image_class_balance.imbalanced": "The smallest class, '{name}', has {smallest:,} images, {ratio} of the "
    "largest, '{largest_name}' ({largest:,}).",
    "check.image_class_balance.ok": "{n} classes, from {smallest:,} images ('{name}') to {largest:,} "
    "('{largest_name}').",
    "check.image_class_balance.why": "The model learns to tell classes apart from examples of each. A class with "
    "one or two images can be neither learned nor tested; a class much smaller than the others is seen rarely, "
    "and the model learns to ignore it.",
    "check.image_class_balance.fix": "Collect more images of the small classes, merge a tiny class into a related "
    "one, or drop it.",
    "check.unlabeled_images.title": "Images without a label",
    "check.unlabeled_images.ok": "Every image has a label.",
    "check.unlabeled_images.fail": "{n:,} images ({share}) are not in a class folder, so they have no label.",
    "check.unlabeled_images.why": "An image without a label teaches the model nothing and is left out of training.",
    "check.unlabeled_images.fix": "Label them on the Labeling page, or move them into their class folders and "
    "upload again.",
    "check.tiny_images.title": "Tiny images",
    "check.tiny_images.na": "No image to measure.",
    "check.tiny_images.ok": "Every image is at least {min} pixels on each side.",
    "check.tiny_images.all_small": "Every image is small (at most {largest} pixels): fine for simple shapes such "
    "as digits or clothing outlines, too small for photos.",
    "check.tiny_images.fail": "{n:,} images are under {min} pixels on a side, among larger ones.",
    "check.tiny_images.why": "A tiny image among larger ones is usually an icon, a thumbnail or a broken export. "
    "Enlarged to the model's size it is a blur, and it teaches the model little.",
    "check.tiny_images.fix": "Drop the tiny images, or replace them with the full-size originals.",
    "check.duplicate_images.title": "Duplicate images",
    "check.duplicate_images.ok": "No duplicate or near-duplicate images.",
    "check.duplicate_images.fail": "{exact:,} exact and {near:,} near-duplicate copies ({share} of the images).",
    "check.duplicate_images.why": "Copies of a picture (or the same photo saved again, slightly edited) can land "
    "in both the training and the test set: the model is then tested on pictures it has already seen and looks "
    "better than it is.",
    "check.duplicate_images.fix": "Drop the copies, keeping the first image of each group.",
    "check.duplicates_across_classes.title": "Same image, different classes",
    "check.duplicates_across_classes.ok": "No picture appears under two classes.",
    "check.duplicates_across_classes.fail": "{n:,} images in {groups:,} groups show the same, or nearly the same, "
    "picture filed under different classes.",
    "check.duplicates_across_classes.why": "If the same picture is labelled both ways, at least one label is "
    "wrong, and the model is taught two answers for one picture.",
    "check.duplicates_across_classes.fix": "Review these images on the Labeling page and keep each picture in one "
    "class.",
    "check.duplicates_across_splits.title": "Same image in training and test",
    "check.duplicates_across_splits.na": "The upload has no separate training and test folders.",
    "check.duplicates_across_splits.ok": "No picture in one split appears again in another.",
    "check.duplicates_across_splits.fail": "{n:,} images in {splits} also appear, or nearly so, in another split.",
    "check.duplicates_across_splits.why": "A test picture that is also in the training set lets the model answer "
    "from memory: the test score no longer says how it does on new pictures.",
    "check.duplicates_across_splits.fix": "Drop the copies outside the training split.",
    "check.mixed_modes_sizes.title": "Colour modes and sizes",
    "check.mixed_modes_sizes.na": "No image to measure.",
    "check.mixed_modes_sizes.uniform": "Every image has the same colour mode and size ({modes}; {largest}).",
    "check.mixed_modes_sizes.mixed": "Colour modes: {modes}; {sizes:,} different sizes, from {smallest} to {largest}.",
    "check.mixed_modes_sizes.why": "Pictures come in colour or grey, with transparency or a palette, and in many "
    "sizes. The model converts every image to colour at one size, so this is only a note; very different sizes "
    "can mean the images come from different sources.",
    "check.mixed_modes_sizes.fix": "Nothing to do. If some images come from another source, check that they show "
    "the same kind of thing.",
}

ZH: dict[str, str] = {
    "check.undecodable_images.title": "无法打开的图片",
    "check.undecodable_images.ok": "全部 {images:,} 张图片都能正常打开。",
    "check.undecodable_images.fail": "有 {n:,} 个文件无法作为图片打开：{names}。",
    "check.undecodable_images.why": "损坏或类型不符的文件（例如只复制了一半的照片，或被改名为 .jpg 的 PDF）"
    "无法交给模型：训练会在它上面中断，或者不声不响地跳过它。",
    "check.undecodable_images.fix": "删除这些文件，或换成能正常打开的副本后重新上传。",
    "check.too_few_images.title": "图片数量是否足够",
    "check.too_few_images.ok": "共 {n:,} 张图片。",
    "check.too_few_images.fail": "能打开的图片只有 {n:,} 张；至少需要 {min} 张。",
    "check.too_few_images.why": "模型要从大量样本中学习每个类别的样子。只有寥寥几张图片时，"
    "它只能死记硬背，测试集也太小，无法说明模型是否有效。",
    "check.too_few_images.fix": "收集更多图片：至少 30 张，最好每个类别几百张。",
    "check.image_class_balance.title": "各类别的图片数量",
    "check.image_class_balance.none": "没有任何图片带有标签。请把图片按类别分别放进各自的文件夹。",
    "check.image_class_balance.one": "所有图片都属于同一个类别“{name}”；分类模型至少需要 2 个类别。",
    "check.image_class_balance.rare": "图片少于 {min} 张的类别（{n} 个）：{names}。",
    "check.image_class_balance.imbalanced": "最小的类别“{name}”只有 {smallest:,} 张图片，"
    "是最大类别“{largest_name}”（{largest:,} 张）的 {ratio}。",
    "check.image_class_balance.ok": "共 {n} 个类别，图片数从 {smallest:,} 张（“{name}”）"
    "到 {largest:,} 张（“{largest_name}”）不等。",
    "check.image_class_balance.why": "模型要从每个类别的样本中学会区分它们。只有一两张图片的类别既无法学习也无法测试；"
    "比其他类别小得多的类别模型很少见到，往往会学着忽略它。",
    "check.image_class_balance.fix": "为小类别收集更多图片，把极小的类别并入相近的类别，或者删除它。",
    "check.unlabeled_images.title": "没有标签的图片",
    "check.unlabeled_images.ok": "每张图片都有标签。",
    "check.unlabeled_images.fail": "有 {n:,} 张图片（{share}）不在任何类别文件夹中，因此没有标签。",
    "check.unlabeled_images.why": "没有标签的图片无法让模型学到任何东西，训练时会被排除在外。",
    "check.unlabeled_images.fix": "在“标注”页为它们添加标签，或把它们移到对应的类别文件夹后重新上传。",
    "check.tiny_images.title": "过小的图片",
    "check.tiny_images.na": "没有可以测量的图片。",
    "check.tiny_images.ok": "每张图片的宽和高都至少有 {min} 像素。",
    "check.tiny_images.all_small": "所有图片都很小（最大 {largest} 像素）：适合数字、服装轮廓这类简单图形，"
    "但对照片来说太小了。",
    "check.tiny_images.fail": "有 {n:,} 张图片的宽或高不足 {min} 像素，而其他图片都更大。",
    "check.tiny_images.why": "混在大图中的小图通常是图标、缩略图或导出出错的文件。放大到模型所需的尺寸后只是一片模糊，"
    "模型从中学不到什么。",
    "check.tiny_images.fix": "删除这些过小的图片，或换成原始尺寸的图片。",
    "check.duplicate_images.title": "重复图片",
    "check.duplicate_images.ok": "没有完全重复或近似重复的图片。",
    "check.duplicate_images.fail": "有 {exact:,} 张完全重复、{near:,} 张近似重复的副本（占全部图片的 {share}）。",
    "check.duplicate_images.why": "同一张图片的副本（或重新保存、稍作修改的同一张照片）可能同时进入训练集和测试集，"
    "模型就会在见过的图片上接受测试，效果看起来比实际更好。",
    "check.duplicate_images.fix": "删除副本，每组保留第一张。",
    "check.duplicates_across_classes.title": "同一画面、不同类别",
    "check.duplicates_across_classes.ok": "没有画面同时出现在两个类别中。",
    "check.duplicates_across_classes.fail": "有 {n:,} 张图片（{groups:,} 组）是相同或几乎相同的画面，"
    "却被归入了不同的类别。",
    "check.duplicates_across_classes.why": "同一个画面被标成两种类别，说明至少有一个标签是错的，"
    "模型会对同一张图学到两个答案。",
    "check.duplicates_across_classes.fix": "在“标注”页复核这些图片，让每个画面只属于一个类别。",
    "check.duplicates_across_splits.title": "训练集与测试集中的相同图片",
    "check.duplicates_across_splits.na": "上传的数据没有单独的训练和测试文件夹。",
    "check.duplicates_across_splits.ok": "没有画面在不同的数据划分中重复出现。",
    "check.duplicates_across_splits.fail": "{splits} 中有 {n:,} 张图片在另一个数据划分中也出现了（或几乎相同）。",
    "check.duplicates_across_splits.why": "测试集里的图片如果也在训练集中，模型就能凭记忆作答："
    "测试得分不再能说明它在新图片上的表现。",
    "check.duplicates_across_splits.fix": "删除训练集以外的副本。",
    "check.mixed_modes_sizes.title": "颜色模式和尺寸",
    "check.mixed_modes_sizes.na": "没有可以测量的图片。",
    "check.mixed_modes_sizes.uniform": "所有图片的颜色模式和尺寸都相同（{modes}；{largest}）。",
    "check.mixed_modes_sizes.mixed": "颜色模式：{modes}；共有 {sizes:,} 种尺寸，从 {smallest} 到 {largest}。",
    "check.mixed_modes_sizes.why": "图片可能是彩色或灰度的，可能带透明通道或调色板，尺寸也各不相同。"
    "模型会把每张图片都转成统一尺寸的彩色图，所以这只是提示；尺寸差异很大可能说明图片来自不同的来源。",
    "check.mixed_modes_sizes.fix": "无需处理。如果部分图片来自其他来源，请确认它们拍的是同一类东西。",
}
