"""Plotly's own words in the reader's language (the chart toolbar's tooltips, the names of days and months), and
reference lines that cost a page nothing.

Plotly.js takes a locale through its config (`locale` and `locales`), so no script of its own is loaded: every
chart passes `config=plotly_config()` to `st.plotly_chart`. The Chinese words are ours.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from dashboard.i18n import lang

T = TypeVar("T")
_SHARED: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_SHARED_LOCK = threading.Lock()
SHARED_CHARTS = 256  # the most recently shown charts kept

_ZH_CN: dict[str, Any] = {
    "dictionary": {
        "Autoscale": "自动缩放",
        "Box Select": "框选",
        "Click to enter Colorscale title": "点击输入色阶标题",
        "Click to enter Component A title": "点击输入 A 分量标题",
        "Click to enter Component B title": "点击输入 B 分量标题",
        "Click to enter Component C title": "点击输入 C 分量标题",
        "Click to enter Plot title": "点击输入图表标题",
        "Click to enter X axis title": "点击输入 X 轴标题",
        "Click to enter Y axis title": "点击输入 Y 轴标题",
        "Click to enter radial axis title": "点击输入径向轴标题",
        "Compare data on hover": "悬停时比较数据",
        "Double-click on legend to isolate one trace": "双击图例只看这一条",
        "Double-click to zoom back out": "双击恢复原来的缩放",
        "Download plot": "下载图表",
        "Download plot as a png": "下载为 PNG 图片",
        "Draw circle": "画圆",
        "Draw closed freeform": "画封闭图形",
        "Draw line": "画线",
        "Draw open freeform": "画开放图形",
        "Draw rectangle": "画矩形",
        "Erase active shape": "删除选中的图形",
        "Lasso Select": "套索选择",
        "Orbital rotation": "轨道旋转",
        "Pan": "平移",
        "Produced with Plotly.js": "由 Plotly.js 生成",
        "Reset": "重置",
        "Reset axes": "重置坐标轴",
        "Reset camera to default": "重置相机",
        "Reset camera to last save": "回到上次保存的相机",
        "Reset view": "重置视图",
        "Reset views": "重置所有视图",
        "Show closest data on hover": "悬停时显示最近的数据",
        "Snapshot succeeded": "截图完成",
        "Sorry, there was a problem downloading your snapshot!": "抱歉，下载截图时出了问题！",
        "Taking snapshot - this may take a few seconds": "正在截图，请稍候",
        "Toggle Spike Lines": "显示或隐藏辅助线",
        "Toggle show closest data on hover": "切换悬停时显示最近的数据",
        "Turntable rotation": "转台旋转",
        "Zoom": "缩放",
        "Zoom in": "放大",
        "Zoom out": "缩小",
        "close:": "收盘：",
        "high:": "最高：",
        "low:": "最低：",
        "open:": "开盘：",
        "trace": "数据",
    },
    "format": {
        "days": ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
        "shortDays": ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
        "months": [f"{m}月" for m in ("一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二")],
        "shortMonths": [f"{m}月" for m in range(1, 13)],
        "date": "%Y-%m-%d",
    },
}


def plotly_config() -> dict[str, Any]:
    """The `config` of every chart: no Plotly logo, and the toolbar and dates in the reader's language."""
    config: dict[str, Any] = {"displaylogo": False}
    if lang() == "zh":
        config |= {"locale": "zh-CN", "locales": {"zh-CN": _ZH_CN}}
    return config


def rule(fig: Any, *, x: float | None = None, y: float | None = None, dash: str = "dot", color: str = "grey") -> None:
    """A vertical line at `x` or a horizontal one at `y`, across the plot.

    What `add_vline`/`add_hline` draw, as one plain shape: they work out every subplot the line crosses, which
    took 10-20 ms a line, on every page run, under the lock all sessions share.
    """
    ends = {"x0": x, "x1": x, "y0": 0, "y1": 1, "xref": "x", "yref": "y domain"} if x is not None else {}
    ends = ends or {"y0": y, "y1": y, "x0": 0, "x1": 1, "yref": "y", "xref": "x domain"}
    fig.add_shape(type="line", line={"dash": dash, "color": color}, **ends)


def shared(key: tuple[Any, ...], build: Callable[[], T]) -> T:
    """A chart (or a dict of them) built once per `key` and then shown to every session.

    Plotly checks every property as a figure is built: 10-25 ms a chart, on every run of a page, under the lock
    all sessions share. A finished run's charts never change, so the key is the run (its id and creation time),
    the chart, the language and whatever else the chart shows. `st.plotly_chart` copies a figure; nothing changes
    one after it is built.
    """
    with _SHARED_LOCK:
        if key in _SHARED:
            _SHARED.move_to_end(key)
            return _SHARED[key]
    built = build()
    with _SHARED_LOCK:
        _SHARED[key] = built
        while len(_SHARED) > SHARED_CHARTS:
            _SHARED.popitem(last=False)
    return built
