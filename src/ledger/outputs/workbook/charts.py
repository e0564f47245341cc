"""The 图表 sheet: native Excel bar charts (fines and bonuses per agent; fines by rule).

The chart data is written as a plain table on the 图表 sheet itself (A: 客服, B: 罚款,
C: 奖励; E: 规则, F: 罚款合计) and the charts reference those cells, with cached
values so readers that do not recalculate still draw them. The parts follow what Excel
writes for a sheet with a drawing: worksheet → drawing (two anchors) → two chart
parts, with their relationships and content types. `<c:f>` in a chart is a range
reference of the chart, not a cell formula: no cell ever gets a formula.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.sax.saxutils import escape

import attrs

from ledger.core.money import round_line
from ledger.outputs.workbook.cells import Table, encode_text

CHARTS = "图表"
HEADER = ("客服", "罚款", "奖励", "", "规则", "罚款合计")
_NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_NS_C = "http://schemas.openxmlformats.org/drawingml/2006/chart"
_NS_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_NS_XDR = "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing"
_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def charts_table(statement):
    """The data table of the 图表 sheet (or None when there is nothing to draw)."""

    agents = [(a.agent, round_line(a.fines), round_line(a.bonuses)) for a in statement.agents]
    rules = [(r.rule_id, round_line(r.total)) for r in statement.rules if r.kind == "fine"]
    n = max(len(agents), len(rules))
    if n == 0:
        return None
    rows = tuple((agents[i] if i < len(agents) else (None, None, None)) + (None,)
                 + (rules[i] if i < len(rules) else (None, None)) for i in range(n))
    return Table(CHARTS, HEADER, rows)


@attrs.frozen
class _Series:
    name_ref: str
    name: str
    cat_ref: str
    cats: tuple[str, ...]
    val_ref: str
    vals: tuple[str, ...]


class ChartPackage:
    """The extra parts for the 图表 sheet of a workbook (nothing when it has none)."""

    def __init__(self, tables: list):
        self.index = next((i for i, t in enumerate(tables) if t.title == CHARTS), None)
        self.charts: list[tuple[str, list[_Series]]] = []
        if self.index is None:
            return
        rows = list(tables[self.index].rows())
        agents = [r for r in rows if r[0] is not None]
        rules = [r for r in rows if r[4] is not None]
        sheet = "'" + CHARTS + "'"

        def series(col: str, head: str, key: int, val: int, items, cat_col: str):
            last = len(items) + 1
            return _Series(f"{sheet}!${col}$1", head, f"{sheet}!${cat_col}$2:${cat_col}${last}",
                           tuple(str(r[key]) for r in items), f"{sheet}!${col}$2:${col}${last}",
                           tuple(format(r[val], "f") for r in items))

        if agents:
            self.charts.append(("每位客服的罚款和奖励（元）",
                                [series("B", "罚款", 0, 1, agents, "A"), series("C", "奖励", 0, 2, agents, "A")]))
        if rules:
            self.charts.append(("各规则罚款合计（元）", [series("F", "罚款合计", 4, 5, rules, "E")]))

    def content_types(self) -> str:
        if not self.charts:
            return ""
        out = ('<Override PartName="/xl/drawings/drawing1.xml" '
               'ContentType="application/vnd.openxmlformats-officedocument.drawing+xml"/>')
        for n in range(1, len(self.charts) + 1):
            out += (f'<Override PartName="/xl/charts/chart{n}.xml" '
                    'ContentType="application/vnd.openxmlformats-officedocument.drawingml.chart+xml"/>')
        return out

    def wrap(self, i: int, chunks: Iterable[str]) -> Iterator[str]:
        """The worksheet's chunks, with the drawing reference before </worksheet>."""
        if i != self.index or not self.charts:
            yield from chunks
            return
        last = None
        for chunk in chunks:
            if last is not None:
                yield last
            last = chunk
        assert last is not None and last.endswith("</worksheet>")
        yield last[: -len("</worksheet>")] + '<drawing r:id="rId1"/></worksheet>'

    def parts(self) -> Iterator[tuple[str, list[str]]]:
        if not self.charts:
            return
        sheet = f"xl/worksheets/_rels/sheet{self.index + 1}.xml.rels"
        yield sheet, [_DECL + f'<Relationships xmlns="{_NS_PKG_REL}"><Relationship Id="rId1" '
                      f'Type="{_NS_R}/drawing" Target="../drawings/drawing1.xml"/></Relationships>']
        anchors = "".join(_anchor(n, 7, 1 + (n - 1) * 22) for n in range(1, len(self.charts) + 1))
        yield "xl/drawings/drawing1.xml", [_DECL + f'<xdr:wsDr xmlns:xdr="{_NS_XDR}" xmlns:a="{_NS_A}">'
                                           f"{anchors}</xdr:wsDr>"]
        rels = "".join(f'<Relationship Id="rId{n}" Type="{_NS_R}/chart" Target="../charts/chart{n}.xml"/>'
                       for n in range(1, len(self.charts) + 1))
        yield "xl/drawings/_rels/drawing1.xml.rels", [_DECL + f'<Relationships xmlns="{_NS_PKG_REL}">{rels}</Relationships>']
        for n, (title, series) in enumerate(self.charts, 1):
            yield f"xl/charts/chart{n}.xml", [_chart_xml(title, series)]


def _anchor(n: int, col: int, row: int) -> str:
    return (f"<xdr:twoCellAnchor><xdr:from><xdr:col>{col}</xdr:col><xdr:colOff>0</xdr:colOff>"
            f"<xdr:row>{row}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:from>"
            f"<xdr:to><xdr:col>{col + 10}</xdr:col><xdr:colOff>0</xdr:colOff>"
            f"<xdr:row>{row + 20}</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:to>"
            f'<xdr:graphicFrame macro=""><xdr:nvGraphicFramePr><xdr:cNvPr id="{n + 1}" name="Chart {n}"/>'
            "<xdr:cNvGraphicFramePr/></xdr:nvGraphicFramePr>"
            '<xdr:xfrm><a:off x="0" y="0"/><a:ext cx="0" cy="0"/></xdr:xfrm>'
            f'<a:graphic><a:graphicData uri="{_NS_C}"><c:chart xmlns:c="{_NS_C}" xmlns:r="{_NS_R}" r:id="rId{n}"/>'
            "</a:graphicData></a:graphic></xdr:graphicFrame><xdr:clientData/></xdr:twoCellAnchor>")


def _text(s: str) -> str:

    return escape(encode_text(s))


def _str_cache(values) -> str:
    pts = "".join(f'<c:pt idx="{i}"><c:v>{_text(v)}</c:v></c:pt>' for i, v in enumerate(values))
    return f'<c:strCache><c:ptCount val="{len(values)}"/>{pts}</c:strCache>'


def _chart_xml(title: str, series: list[_Series]) -> str:
    sers = ""
    for i, s in enumerate(series):
        nums = "".join(f'<c:pt idx="{k}"><c:v>{v}</c:v></c:pt>' for k, v in enumerate(s.vals))
        sers += (f'<c:ser><c:idx val="{i}"/><c:order val="{i}"/>'
                 f"<c:tx><c:strRef><c:f>{_text(s.name_ref)}</c:f>{_str_cache([s.name])}</c:strRef></c:tx>"
                 '<c:invertIfNegative val="0"/>'
                 f"<c:cat><c:strRef><c:f>{_text(s.cat_ref)}</c:f>{_str_cache(s.cats)}</c:strRef></c:cat>"
                 f"<c:val><c:numRef><c:f>{_text(s.val_ref)}</c:f><c:numCache><c:formatCode>0.00</c:formatCode>"
                 f'<c:ptCount val="{len(s.vals)}"/>{nums}</c:numCache></c:numRef></c:val></c:ser>')
    return (_DECL + f'<c:chartSpace xmlns:c="{_NS_C}" xmlns:a="{_NS_A}" xmlns:r="{_NS_R}">'
            '<c:roundedCorners val="0"/><c:chart>'
            f"<c:title><c:tx><c:rich><a:bodyPr/><a:p><a:r><a:t>{_text(title)}</a:t></a:r></a:p></c:rich></c:tx>"
            '<c:overlay val="0"/></c:title><c:autoTitleDeleted val="0"/><c:plotArea><c:layout/>'
            '<c:barChart><c:barDir val="col"/><c:grouping val="clustered"/><c:varyColors val="0"/>'
            f'{sers}<c:gapWidth val="150"/><c:axId val="100"/><c:axId val="200"/></c:barChart>'
            '<c:catAx><c:axId val="100"/><c:scaling><c:orientation val="minMax"/></c:scaling><c:delete val="0"/>'
            '<c:axPos val="b"/><c:numFmt formatCode="General" sourceLinked="0"/><c:tickLblPos val="nextTo"/>'
            '<c:crossAx val="200"/><c:crosses val="autoZero"/><c:auto val="1"/><c:lblAlgn val="ctr"/>'
            '<c:lblOffset val="100"/></c:catAx>'
            '<c:valAx><c:axId val="200"/><c:scaling><c:orientation val="minMax"/></c:scaling><c:delete val="0"/>'
            '<c:axPos val="l"/><c:majorGridlines/><c:numFmt formatCode="0.00" sourceLinked="0"/>'
            '<c:tickLblPos val="nextTo"/><c:crossAx val="100"/><c:crosses val="autoZero"/>'
            '<c:crossBetween val="between"/></c:valAx></c:plotArea>'
            '<c:legend><c:legendPos val="b"/><c:overlay val="0"/></c:legend><c:plotVisOnly val="1"/>'
            '<c:dispBlanksAs val="gap"/></c:chart></c:chartSpace>')
