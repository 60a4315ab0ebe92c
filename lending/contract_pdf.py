"""The signed loan contract as a PDF (reportlab, with its built-in CJK font STSong-Light: no
font file needed): the contract's text, then the signature block (who signed, when, with which
proof, the evidence record and the text's SHA-256)."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

_BODY = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=17, wordWrap="CJK", spaceAfter=3)
_TITLE = ParagraphStyle("title", parent=_BODY, fontSize=18, leading=26, alignment=1, spaceAfter=10)
_HEADING = ParagraphStyle("heading", parent=_BODY, fontSize=11.5, leading=19, spaceBefore=6)
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=9, leading=13)


def render(text: str, signature: list[tuple[str, str]], title: str) -> bytes:
    """The PDF of the contract `text` (its first line the heading) with the `signature` block's
    rows (label, value). `title` is the document's metadata title."""
    lines = text.strip().split("\n")
    story: list = [Paragraph(escape(lines[0]), _TITLE)]
    for line in lines[1:]:
        if not line.strip():
            story.append(Spacer(1, 2 * mm))
        elif line.startswith("第") and "条" in line[:6]:
            story.append(Paragraph(escape(line), _HEADING))
        else:
            story.append(Paragraph(escape(line), _BODY))
    story += [Spacer(1, 6 * mm), Paragraph("电子签署信息", _HEADING)]
    rows = [[Paragraph(escape(k), _SMALL), Paragraph(escape(v), _SMALL)] for k, v in signature]
    table = Table(rows, colWidths=[32 * mm, 138 * mm])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(table)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
        author=signature[0][1] if signature else "",
    )
    doc.build(story, onFirstPage=_page_number, onLaterPages=_page_number)
    return out.getvalue()


def _page_number(canvas, doc) -> None:
    canvas.saveState()
    canvas.setFont(FONT, 8)
    canvas.drawCentredString(A4[0] / 2, 10 * mm, f"第{doc.page}页")
    canvas.restoreState()
