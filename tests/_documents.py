"""Real files of every format vecmem reads, written by the real writers (fpdf2, python-docx,
python-pptx, openpyxl; EPUB and HTML by hand, as their specs lay them out), each holding known
sentences at known pages / slides / sheets / sections: ``SENTENCES`` says where."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

# sentence -> (file, the metadata its hit must carry)
SENTENCES: dict[str, tuple[str, dict[str, Any]]] = {
    "The orange heron nests beside the quiet lake every spring.": (
        "report.pdf",
        {"page": 1, "heading": "Introduction"},
    ),
    "Copper kettles whistle louder in the northern valley.": (
        "report.pdf",
        {"page": 2, "heading": "Introduction"},
    ),
    "We counted violet mushrooms under the oak trees at dawn.": (
        "report.pdf",
        {"page": 2, "heading": "Methods"},
    ),
    "The granite bridge held forty tonnes without a crack.": (
        "report.pdf",
        {"page": 4, "heading": "Methods > Results"},
    ),
    "Each probe was buried at a depth of ten centimetres beside a marker stone.": (
        "paper.pdf",
        {"page": 1, "heading": "Soil moisture in upland meadows > 1 Methods"},
    ),
    "The probes were calibrated against oven-dried samples weighed in the lab.": (
        "paper.pdf",
        {"page": 2, "heading": "Soil moisture in upland meadows > 1 Methods > 1.1 Calibration"},
    ),
    "Moisture fell by a third in the plots grazed by the black-faced sheep.": (
        "paper.pdf",
        {"page": 2, "heading": "Soil moisture in upland meadows > 2 Results"},
    ),
    "New staff receive a blue lanyard on the first morning.": (
        "handbook.docx",
        {"page": 1, "heading": "Handbook > Onboarding"},
    ),
    "Every laptop ships with a spare charger in the cardboard box.": (
        "handbook.docx",
        {"page": 1, "heading": "Handbook > Onboarding > Equipment"},
    ),
    "Holiday requests go to the rota manager two weeks ahead.": (
        "handbook.docx",
        {"page": 2, "heading": "Handbook > Leave"},
    ),
    "Quarterly revenue grew because penguin umbrellas sold out.": (
        "deck.pptx",
        {"slide": 1, "heading": "Sales review"},
    ),
    "Hiring paused for saxophone engineers until autumn.": (
        "deck.pptx",
        {"slide": 2, "heading": "Team plans"},
    ),
    "Remind everyone that the walrus mascot retires.": (
        "deck.pptx",
        {"slide": 2, "heading": "Team plans"},
    ),
    "Tuba tester": ("deck.pptx", {"slide": 2, "heading": "Team plans"}),
    "Zeppelin": ("budget.xlsx", {"sheet": "Fleet"}),
    "Marmalade": ("budget.xlsx", {"sheet": "Pantry"}),
    "Always switch off the mains before drilling into a wall that may hide cables.": (
        "guide.html",
        {"heading": "Installing the widget > Safety"},
    ),
    "You will need a cross-head screwdriver and a spirit level for the bracket.": (
        "guide.html",
        {"heading": "Installing the widget > Tools"},
    ),
    "The quince batch was bottled on a rainy Tuesday after the sediment had settled completely.": (
        "blog.html",
        {"heading": "Brewing notes > Bottling"},
    ),
    "press --apples 40 --quince 12": ("blog.html", {"heading": "Brewing notes > Bottling"}),
    "The lighthouse keeper counted ships by candlelight.": (
        "novel.epub",
        {"heading": "Chapter One"},
    ),
    "Snow buried the harbour road for eleven days.": ("novel.epub", {"heading": "Chapter Two"}),
    "Tangerine trams run every seven minutes.": ("notes.md", {"heading": "Transport > Trams"}),
    "Walrus, 42, Arctic": ("animals.csv", {}),
}

BOILERPLATE = ["About our company", "Subscribe to the newsletter", "All rights reserved"]

HTML = """<!doctype html><html><head><title>Widget guide</title></head><body>
<header><div class="menu"><a href="/">Home</a> | <a href="/about">About our company</a> |
<a href="/news">Subscribe to the newsletter</a></div></header>
<nav><ul><li><a href="/a">Products</a></li><li><a href="/b">About our company</a></li>
<li><a href="/c">Careers</a></li></ul></nav>
<main><article>
<h1>Installing the widget</h1>
<p>The widget needs a level surface and two screws of eight millimetres before anything else.</p>
<h2>Tools</h2>
<p>You will need a cross-head screwdriver and a spirit level for the bracket.</p>
<table><tr><th>Part</th><th>Count</th></tr><tr><td>Screw</td><td>2</td></tr>
<tr><td>Bracket</td><td>1</td></tr></table>
<h2>Safety</h2>
<p>Always switch off the mains before drilling into a wall that may hide cables.</p>
</article></main>
<footer><p>Copyright 2026 Widget Corp. All rights reserved. Privacy policy. Terms of use.
Subscribe to the newsletter.</p></footer>
</body></html>"""


# an older page with no <main>: trafilatura finds the content among the boilerplate
BLOG = """<!doctype html><html><head><title>Blog</title></head><body>
<div id="top"><a href="/">Home</a> <a href="/about">About our company</a>
<a href="/news">Subscribe to the newsletter</a></div>
<div id="menu"><ul><li><a href="/x">Archive</a></li><li><a href="/y">About our company</a></li>
<li><a href="/z">Contact</a></li></ul></div>
<div class="post"><h1>Brewing notes</h1>
<p>Our cellar keeps the cider at eleven degrees while it ferments for three long weeks, and we
taste a sample from every barrel each Sunday before deciding which ones are ready to bottle.</p>
<h2>Bottling</h2>
<p>The quince batch was bottled on a rainy Tuesday after the sediment had settled completely,
which took longer than usual because the cellar stayed colder than the previous autumn.</p>
<figure><pre>press --apples 40 --quince 12</pre><figcaption>The press settings we used for the
quince batch this year.</figcaption></figure>
</div>
<div id="foot">Copyright 2026 Cider Club. All rights reserved. Subscribe to the newsletter.
</div></body></html>"""


def _para(pdf: Any, text: str) -> None:
    pdf.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")


def pdf_bytes(*, encrypt: bool = False, blank_page: bool = True) -> bytes:
    """Four pages with an outline: Introduction (p. 1-2), Methods (from part-way down p. 2),
    Results under Methods (p. 4); page 3 has no text (a scan would look like that)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.start_section("Introduction")
    _para(pdf, "Introduction")
    _para(pdf, "The orange heron nests beside the quiet lake every spring.")
    pdf.add_page()
    _para(pdf, "Copper kettles whistle louder in the northern valley.")
    pdf.start_section("Methods")
    _para(pdf, "Methods")
    _para(pdf, "We counted violet mushrooms under the oak trees at dawn.")
    pdf.add_page()
    if not blank_page:
        _para(pdf, "A page of text where the scan would be.")
    pdf.add_page()
    pdf.start_section("Results", level=1)
    _para(pdf, "Results")
    _para(pdf, "The granite bridge held forty tonnes without a crack.")
    if encrypt:
        pdf.set_encryption(owner_password="owner", user_password="secret")
    return bytes(pdf.output())


def paper_pdf_bytes() -> bytes:
    """Two pages without an outline: headings are only larger type (a title at 20 pt, sections
    at 15, a subsection at 13, body text at 11)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()

    def line(size: int, text: str) -> None:
        pdf.set_font("helvetica", size=size)
        pdf.multi_cell(0, size * 0.6, text, new_x="LMARGIN", new_y="NEXT")

    line(20, "Soil moisture in upland meadows")
    line(11, "We sampled forty plots across three valleys during a dry summer. " * 2)
    line(15, "1 Methods")
    line(11, "Each probe was buried at a depth of ten centimetres beside a marker stone. " * 2)
    pdf.add_page()
    line(13, "1.1 Calibration")
    line(11, "The probes were calibrated against oven-dried samples weighed in the lab. " * 2)
    line(15, "2 Results")
    line(11, "Moisture fell by a third in the plots grazed by the black-faced sheep. " * 2)
    return bytes(pdf.output())


def scanned_pdf_bytes() -> bytes:
    """Two pages with only a drawn rectangle each: no text layer at all."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.rect(20, 20, 100, 60, style="F")
    return bytes(pdf.output())


def docx_bytes() -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("Handbook", 0)
    d.add_heading("Onboarding", 1)
    d.add_paragraph("New staff receive a blue lanyard on the first morning.")
    d.add_heading("Equipment", 2)
    d.add_paragraph("Every laptop ships with a spare charger in the cardboard box.")
    table = d.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate([("Item", "Count"), ("Stapler", "3"), ("Monitor", "2")]):
        table.cell(r, 0).text, table.cell(r, 1).text = a, b
    d.add_page_break()
    d.add_heading("Leave", 1)
    d.add_paragraph("Holiday requests go to the rota manager two weeks ahead.")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    s1 = deck.slides.add_slide(deck.slide_layouts[1])
    s1.shapes.title.text = "Sales review"
    s1.placeholders[1].text = "Quarterly revenue grew because penguin umbrellas sold out."
    s2 = deck.slides.add_slide(deck.slide_layouts[5])
    s2.shapes.title.text = "Team plans"
    box = s2.shapes.add_textbox(Inches(1), Inches(2), Inches(6), Inches(1))
    box.text_frame.text = "Hiring paused for saxophone engineers until autumn."
    shape = s2.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1))
    for r, (a, b) in enumerate([("Role", "Openings"), ("Tuba tester", "1")]):
        shape.table.cell(r, 0).text, shape.table.cell(r, 1).text = a, b
    s2.notes_slide.notes_text_frame.text = "Remind everyone that the walrus mascot retires."
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    fleet = book.active
    fleet.title = "Fleet"
    for row in [("Craft", "Seats", "Cost"), ("Zeppelin", 40, 1250.5), ("Glider", 2, 90)]:
        fleet.append(row)
    pantry = book.create_sheet("Pantry")
    for row in [("Item", "Jars"), ("Marmalade", 12), ("Honey", 3)]:
        pantry.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def epub_bytes(*, drm: bool = False) -> bytes:
    """A minimal EPUB 3 as the spec lays it out (mimetype first and stored, container, OPF
    with a spine of two chapters)."""
    chapter = (
        '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
        "<head><title>{t}</title></head><body><h1>{t}</h1><p>{p}</p></body></html>"
    )
    opf = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">x</dc:identifier>
<dc:title>Tides</dc:title><dc:language>en</dc:language></metadata>
<manifest><item id="c2" href="text/two.xhtml" media-type="application/xhtml+xml"/>
<item id="c1" href="text/one.xhtml" media-type="application/xhtml+xml"/></manifest>
<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>"""
    container = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>
</rootfiles></container>"""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        z.writestr("META-INF/container.xml", container)
        z.writestr("OEBPS/content.opf", opf)
        z.writestr(
            "OEBPS/text/one.xhtml",
            chapter.format(
                t="Chapter One", p="The lighthouse keeper counted ships by candlelight."
            ),
        )
        z.writestr(
            "OEBPS/text/two.xhtml",
            chapter.format(t="Chapter Two", p="Snow buried the harbour road for eleven days."),
        )
        if drm:  # as a DRM scheme lists the chapters it encrypted (OCF encryption.xml)
            z.writestr(
                "META-INF/encryption.xml",
                (
                    '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                    'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
                    '<enc:CipherData><enc:CipherReference URI="OEBPS/text/one.xhtml"/>'
                    "</enc:CipherData></enc:EncryptedData></encryption>"
                ),
            )
    return out.getvalue()


def write_corpus(folder: Path) -> Path:
    """Every format into ``folder`` (one file each, named as in ``SENTENCES``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.pdf").write_bytes(pdf_bytes())
    (folder / "paper.pdf").write_bytes(paper_pdf_bytes())
    (folder / "handbook.docx").write_bytes(docx_bytes())
    (folder / "deck.pptx").write_bytes(pptx_bytes())
    (folder / "budget.xlsx").write_bytes(xlsx_bytes())
    (folder / "guide.html").write_text(HTML)
    (folder / "blog.html").write_text(BLOG)
    (folder / "novel.epub").write_bytes(epub_bytes())
    (folder / "notes.md").write_text(
        "# Transport\n\nBuses are slow.\n\n## Trams\n\nTangerine trams run every seven minutes.\n"
    )
    (folder / "animals.csv").write_text(
        "Animal, Weight, Habitat\nWalrus, 42, Arctic\nCamel, 600, Desert\n"
    )
    (folder / "tool.py").write_text('def spin():\n    """Spin the flywheel gently."""\n')
    return folder
