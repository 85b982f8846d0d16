"""Write the agreement-test fixtures (tests/fixtures/agreement/) through the real applications.

    python scripts/make_agreement_fixtures.py [IMAGE]    # IMAGE: the desktop image (default: ours)

The sources are built here with openpyxl / python-docx / python-pptx / Pillow / numpy, then saved
again by the applications of the sandbox image, headless, in a container without network, as a
user's Ctrl+S would: LibreOffice re-saves every xlsx/docx/pptx (and exports the per-sheet CSVs
sheet_print reads, the PDFs compare_pdfs reads and the HTML chapters of the epubs); GIMP loads,
edits and exports the pictures; ffmpeg (the image's, VLC's) encodes the MP3. Only the
application-written files are kept. The tests read the committed files and need no Docker.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import wave
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openpyxl
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "agreement"
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,UTF-8,1,,0,false,true,true,false,false,-1"
RED, BLUE, YELLOW = "FFFF0000", "FF0000FF", "FFFFFF00"


# --- spreadsheets -------------------------------------------------------------------------------

def _days(path: Path, weekend_fill: str) -> None:
    """A week, weekend rows filled (the 'highlight weekends in red' shape)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["Day", "Hours"])
    for day, hours in [("Mon", 8), ("Tue", 7), ("Wed", 8), ("Thu", 6), ("Fri", 5), ("Sat", 0), ("Sun", 0)]:
        ws.append([day, hours])
    for row in (7, 8):
        for col in "AB":
            ws[f"{col}{row}"].fill = PatternFill("solid", fgColor=weekend_fill)
    wb.save(path)


def _table(path: Path, rows: list[list]) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    for r, row in enumerate(rows, start=1):
        for c, v in enumerate(row, start=1):
            if v is not None:
                ws.cell(r, c, v)
    wb.save(path)


HEADER = ["Item", "Qty", "Price"]
ROWS = [["Pen", 3, 1.25], ["Ink", 12, 7.5], ["Pad", 5, 2.0]]


def _rules_book(path: Path, *, variant: str) -> None:
    """One sheet carrying every structural thing compare_table's rules look at."""
    other = variant == "other"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(["Region", "Sales", "Cost", "Approved", "Street", "Done"])
    data = [("North", 120, 80, "Yes", "12 Main St.", True), ("South", 90, 95, "No", "3 Oak Rd", False),
            ("East", 150, 60, "Yes", "7 Elm Street", True), ("West", 40, 20, "No", "1 Pine Ave", False)]
    for row in data:
        ws.append(list(row))
    header_font = Font(name="Liberation Serif" if other else "Liberation Sans", size=12, bold=not other,
                       italic=other, color=BLUE)
    for cell in ws[1]:
        cell.font = header_font
    ws["B3"].fill = PatternFill("solid", fgColor=BLUE if other else YELLOW)
    ws.freeze_panes = "A3" if other else "B2"
    if variant == "scrolled":  # same freeze boundary, the view scrolled down (topLeftCell moves)
        ws.sheet_view.pane.topLeftCell = "B40"
        ws.sheet_view.topLeftCell = "A1"
    ws.sheet_view.zoomScale = 100 if other else 150
    dv = DataValidation(type="list", formula1='"Yes,No,Maybe"' if other else '"Yes,No"', allow_blank=True)
    dv.add("D2:D20")
    ws.add_data_validation(dv)
    ws.conditional_formatting.add("B2:B5", CellIsRule(operator="greaterThan", formula=["50" if other else "100"],
                                                      fill=PatternFill("solid", bgColor=RED, fgColor=RED)))
    chart = LineChart() if other else BarChart()
    chart.title = "Sales by region"
    chart.add_data(Reference(ws, min_col=2, min_row=1, max_row=5), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=5))
    ws.add_chart(chart, "H2")
    wb.save(path)


def spreadsheets(src: Path) -> None:
    _days(src / "fill_red.xlsx", RED)
    _days(src / "fill_blue.xlsx", BLUE)
    _table(src / "data.xlsx", [HEADER, *ROWS])
    _table(src / "data_gap.xlsx", [HEADER, ROWS[0], [None] * 3, *ROWS[1:]])
    _table(src / "data_shifted.xlsx", [[None] * 3, HEADER, *ROWS])
    _table(src / "data_text.xlsx", [HEADER, *[[n, str(q), str(p)] for n, q, p in ROWS]])
    _table(src / "data_words.xlsx", [HEADER, ["Pen", "three", 1.25], *ROWS[1:]])
    for variant in ("gold", "same", "other", "scrolled"):
        _rules_book(src / f"rules_{variant}.xlsx", variant=variant)


def _pivot_doc(function: str) -> str:
    """A flat ODF spreadsheet with a DataPilot (Sheet2) over Sheet1: openpyxl cannot write pivot
    tables, LibreOffice writes them into the xlsx it converts this to."""
    rows = [("Region", "Item", "Sales"), ("North", "Pen", 10), ("South", "Pen", 20), ("North", "Ink", 5),
            ("South", "Ink", 7)]

    def cell(v: object) -> str:
        if isinstance(v, int):
            return f'<table:table-cell office:value-type="float" office:value="{v}"><text:p>{v}</text:p></table:table-cell>'
        return f'<table:table-cell office:value-type="string"><text:p>{v}</text:p></table:table-cell>'

    body = "".join("<table:table-row>" + "".join(cell(v) for v in r) + "</table:table-row>" for r in rows)
    level = '<table:data-pilot-level table:show-empty="false"/>'
    fields = "".join(
        f'<table:data-pilot-field table:source-field-name="{name}" {extra} table:used-hierarchy="-1">{level}'
        "</table:data-pilot-field>"
        for name, extra in (("Region", 'table:orientation="row"'),
                            ("Sales", f'table:orientation="data" table:function="{function}"'),
                            ("", 'table:is-data-layout-field="true" table:orientation="column"')))
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document {ns} office:version="1.3" '
            'office:mimetype="application/vnd.oasis.opendocument.spreadsheet"><office:body><office:spreadsheet>'
            f'<table:table table:name="Sheet1">{body}</table:table>'
            '<table:table table:name="Sheet2"><table:table-row><table:table-cell/></table:table-row></table:table>'
            '<table:data-pilot-tables><table:data-pilot-table table:name="DataPilot1" '
            'table:target-range-address="Sheet2.A1:Sheet2.B4">'
            '<table:source-cell-range table:cell-range-address="Sheet1.A1:Sheet1.C5"/>'
            f"{fields}</table:data-pilot-table></table:data-pilot-tables>"
            "</office:spreadsheet></office:body></office:document>\n")


def pivots(src: Path) -> None:
    for name, function in (("pivot_sum", "sum"), ("pivot_sum2", "sum"), ("pivot_count", "count")):
        (src / f"{name}.fods").write_text(_pivot_doc(function))


# Sources also kept as openpyxl wrote them (prefix xl_): its fills are Excel's (bgColor left at its
# default whatever the colour, where LibreOffice writes a colour-dependent one), and headless
# LibreOffice drops a sheet's view (freeze panes, zoom) when it converts, so the freeze and zoom
# rules are tested on these.
XL_SOURCES = ("fill_red.xlsx", "fill_blue.xlsx", "rules_gold.xlsx", "rules_other.xlsx", "rules_scrolled.xlsx")


# --- documents, slides --------------------------------------------------------------------------

# The 21 conference cities of OSWorld's multi_apps/6f4073b8 as an agent may type them: other case,
# accents and punctuation than the task's expected list (CITIES_WRONG: row 8 the wrong city).
CITIES = ["SCOTTSDALE", "Atlanta, GA", "Lake-Tahoe", "Banff", "Beijing", "MONTRÉAL", "San Diego", "Lillé",
          "Montreal", "San Juan", "New York", "Barcelona", "Toulon", "Sydney", "Long Beach", "Vancouver",
          "Stockholm", "Montréal", "New Orleans", "Los Angeles", "vancouver"]
CITIES_WRONG = [*CITIES[:7], "Paris", *CITIES[8:]]


def conference_cities(src: Path) -> None:
    for name, cities in (("cities", CITIES), ("cities_wrong", CITIES_WRONG)):
        _table(src / f"{name}.xlsx", [["Year", "Conference", "City"],
                                      *[[2000 + i, f"Conf {i}", c] for i, c in enumerate(cities)]])


def _doc(path: Path, *, body: str, font: str = "Liberation Serif", spacing: float = 1.5) -> None:
    import docx
    from docx.enum.text import WD_BREAK
    from docx.shared import Pt

    d = docx.Document()
    d.add_heading("Quarterly report", level=1)
    for text in (body, "Costs fell by two percent.", "Outlook: stable."):
        p = d.add_paragraph()
        p.paragraph_format.line_spacing = spacing
        run = p.add_run(text)
        run.font.name = font
        run.font.size = Pt(12)
    d.paragraphs[-1].runs[-1].add_break(WD_BREAK.PAGE)
    d.add_paragraph("Appendix").runs[0].font.name = font
    d.save(path)


def documents(src: Path) -> None:
    _doc(src / "doc_gold.docx", body="Sales rose by five percent.")
    _doc(src / "doc_same.docx", body="Sales rose by five percent.")
    _doc(src / "doc_other.docx", body="Sales fell by nine percent.", font="Liberation Sans", spacing=1.0)
    for name, text in (("chapter1", "It was a bright cold day in April."),
                       ("chapter2", "The clocks were striking thirteen."),
                       ("chapter2_edit", "The clocks were striking twelve, and it rained.")):
        import docx

        d = docx.Document()
        d.add_heading(name.split("_")[0].title(), level=1)
        d.add_paragraph(text)
        d.save(src / f"{name}.docx")


# OSWorld's libreoffice_writer/6f81754e: "time, train_id, station_id, platform_no" lines, duplicates
# to remove. TRAIN_GOLD keeps each train's first line.
TRAINS = ["06:01:10, T101, ADM, 1", "06:03:40, T102, CEN, 2", "06:05:00, T101, WAC, 1",
          "06:07:25, T103, ADM, 2", "06:09:55, T102, SHW, 2", "06:12:30, T104, CEN, 1"]
TRAIN_GOLD = [TRAINS[0], TRAINS[1], TRAINS[3], TRAINS[5]]


def train_records(src: Path) -> None:
    import docx

    for name, lines in (("train_initial", TRAINS), ("train_gold", TRAIN_GOLD),
                        ("train_done", [TRAINS[3], TRAINS[0], TRAINS[5], TRAINS[1]]),  # other order
                        ("train_dupe", [*TRAIN_GOLD, TRAINS[2]]),  # one duplicate left
                        ("train_edited", [*TRAIN_GOLD[:3], "06:12:30, T104, CEN, 3"]),  # a line changed
                        ("train_short", TRAIN_GOLD[:3])):  # a train removed
        d = docx.Document()
        for line in lines:
            d.add_paragraph(line)
        d.add_paragraph("")
        d.save(src / f"{name}.docx")


def _deck(path: Path, *, title: str, size: int) -> None:
    from pptx import Presentation
    from pptx.util import Pt

    prs = Presentation()
    for i, (head, body) in enumerate([(title, "First point"), ("Plan", "Second point")]):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = head
        tf = slide.placeholders[1].text_frame
        tf.text = body
        for p in tf.paragraphs:
            for r in p.runs:
                r.font.size = Pt(size + i)
    prs.save(path)


def slides(src: Path) -> None:
    _deck(src / "deck_gold.pptx", title="Results", size=24)
    _deck(src / "deck_same.pptx", title="Results", size=24)
    _deck(src / "deck_text.pptx", title="Findings", size=24)
    _deck(src / "deck_size.pptx", title="Results", size=18)


def _table_deck(path: Path, *, split: bool) -> None:
    """A slide with a 2x2 table; with `split` cell (0,0)'s text is two runs of different sizes
    (LibreOffice keeps them apart), else one run."""
    from pptx import Presentation
    from pptx.util import Emu, Pt

    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = "Results"
    table = slide.shapes.add_table(2, 2, Emu(914400), Emu(1828800), Emu(6096000), Emu(1219200)).table
    for (r, c), text in {(0, 0): "Region", (0, 1): "Sales", (1, 0): "North", (1, 1): "120"}.items():
        table.cell(r, c).text = text
        table.cell(r, c).text_frame.paragraphs[0].runs[0].font.size = Pt(18)
    if split:
        para = table.cell(0, 0).text_frame.paragraphs[0]
        para.runs[0].text = "Reg"
        extra = para.add_run()
        extra.text = "ion"
        extra.font.size = Pt(20)
    slide.notes_slide.notes_text_frame.text = "Mention the north first."
    prs.save(path)


def table_decks(src: Path) -> None:
    _table_deck(src / "deck_table_gold.pptx", split=False)
    _table_deck(src / "deck_table_runs.pptx", split=True)


# --- pictures, sound ----------------------------------------------------------------------------

def pictures(src: Path) -> None:
    from PIL import Image, ImageDraw, ImageFilter

    img = Image.new("RGB", (64, 48), (235, 235, 235))
    draw = ImageDraw.Draw(img)
    draw.rectangle([4, 6, 28, 40], fill=(200, 40, 40))
    draw.ellipse([36, 9, 60, 36], fill=(40, 90, 200))
    img.filter(ImageFilter.GaussianBlur(1)).save(src / "pic.png")


def _tone(path: Path, freqs: list[float], seconds: float = 1.5, rate: int = 22050) -> None:
    t = np.arange(int(seconds * rate)) / rate
    part = len(t) // len(freqs)
    wave_ = np.concatenate([0.4 * np.sin(2 * np.pi * f * t[:part]) for f in freqs])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((wave_ * 32767).astype("<i2").tobytes())


def sounds(src: Path) -> None:
    _tone(src / "tune.wav", [440, 554, 659])
    _tone(src / "other.wav", [300, 250, 200])


GIMP = """
(define (fx in out op)
  (let* ((img (car (gimp-file-load RUN-NONINTERACTIVE in in)))
         (drw (car (gimp-image-get-active-drawable img))))
    (cond ((= op 1) (gimp-image-flip img ORIENTATION-HORIZONTAL))
          ((= op 2) (gimp-drawable-brightness-contrast drw -0.3 0))
          ((= op 3) (gimp-image-scale img 32 24)))
    (gimp-file-save RUN-NONINTERACTIVE img (car (gimp-image-get-active-drawable img)) out out)))
(fx "/data/in/pic.png" "/data/out/pic_gimp.png" 0)
(fx "/data/in/pic.png" "/data/out/pic_mirror.png" 1)
(fx "/data/in/pic.png" "/data/out/pic_darker.png" 2)
(fx "/data/in/pic.png" "/data/out/pic_half.png" 3)
(gimp-quit 0)
"""


def _epub(path: Path, chapters: list[tuple[str, str]], ident: str) -> None:
    """An epub in calibre's layout (toc.ncx, content.opf at the top, .html chapters), the layout
    upstream's compare_epub reads; the chapters are LibreOffice's HTML export."""
    items = "\n".join(f'    <item id="c{i}" href="{n}" media-type="application/xhtml+xml"/>'
                      for i, (n, _) in enumerate(chapters))
    opf = f"""<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="2.0" unique-identifier="id">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">
    <dc:title>Sample</dc:title>
    <dc:identifier id="id">{ident}</dc:identifier>
  </metadata>
  <manifest>
{items}
  </manifest>
</package>
"""
    points = "\n".join(f'    <navPoint id="p{i}" playOrder="{i + 1}"><navLabel><text>Ch {i + 1}</text></navLabel>'
                       f'<content src="{n}"/></navPoint>' for i, (n, _) in enumerate(chapters))
    ncx = f"""<?xml version="1.0" encoding="utf-8"?>
<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">
  <head><meta name="dtb:uid" content="{ident}"/></head>
  <docTitle><text>Sample</text></docTitle>
  <navMap>
{points}
  </navMap>
</ncx>
"""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", '<?xml version="1.0"?><container version="1.0" '
                   'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile '
                   'full-path="content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>')
        z.writestr("content.opf", opf)
        z.writestr("toc.ncx", ncx)
        for name, html in chapters:
            z.writestr(name, html)


# --- driver -------------------------------------------------------------------------------------

def _names(src: Path, ext: str) -> str:
    return " ".join(f"/data/in/{p.name}" for p in sorted(src.glob(f"*.{ext}")))


def _run(image: str, tmp: Path, script: str) -> None:
    subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "1000:1000", "-e", "HOME=/tmp",
                    "--entrypoint", "sh", "-v", f"{tmp}:/data", image, "-c", script], check=True, timeout=900)


def main(image: str) -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        src, out = tmp / "in", tmp / "out"
        src.mkdir()
        out.mkdir()
        builders: list[Callable[[Path], None]] = [spreadsheets, conference_cities, pivots, documents, train_records,
                                                  slides, table_decks, pictures, sounds]
        for build in builders:
            build(src)
        (src / "fx.scm").write_text(GIMP)
        for p in (tmp, src, out, *src.iterdir()):
            p.chmod(0o777 if p.is_dir() else 0o644)  # the container runs as uid 1000
        sheets = " ".join(f"/data/out/{p.name}" for p in sorted(src.glob("*.xlsx")))
        pdfs = " ".join(f"/data/out/{p.name}" for p in sorted(src.glob("doc_*.docx")))
        chapters = " ".join(f"/data/out/{p.name}" for p in sorted(src.glob("chapter*.docx")))
        _run(image, tmp, " && ".join([
            *(f"soffice --headless --convert-to {ext} --outdir /data/out {_names(src, ext)}"
              for ext in ("xlsx", "docx", "pptx")),
            f"soffice --headless --convert-to xlsx --outdir /data/out {_names(src, 'fods')}",
            f"soffice --headless --convert-to '{CSV_FILTER}' --outdir /data/out {sheets}",
            f"soffice --headless --convert-to pdf --outdir /data/out {pdfs}",
            f"soffice --headless --convert-to html --outdir /data/out {chapters}",
            "gimp -i -b - < /data/in/fx.scm",
            "ffmpeg -loglevel error -i /data/in/tune.wav -codec:a libmp3lame -b:a 64k /data/out/tune.mp3",
            "cp /data/in/tune.wav /data/in/other.wav /data/out/",
        ]))
        html = {p.stem: p.read_text() for p in out.glob("chapter*.html")}
        _epub(out / "book_gold.epub", [("ch1.html", html["chapter1"]), ("ch2.html", html["chapter2"])], "urn:a")
        _epub(out / "book_same.epub", [("ch1.html", html["chapter1"]), ("ch2.html", html["chapter2"])], "urn:b")
        _epub(out / "book_edit.epub", [("ch1.html", html["chapter1"]), ("ch2.html", html["chapter2_edit"])], "urn:c")
        OUT.mkdir(parents=True, exist_ok=True)
        for old in OUT.iterdir():
            if old.is_file():
                old.unlink()
        for name in XL_SOURCES:  # kept as openpyxl wrote them, see XL_SOURCES
            shutil.copy(src / name, out / f"xl_{name}")
        for p in sorted(out.iterdir()):
            if p.suffix in (".html", ".docx") and p.stem.startswith("chapter"):
                continue  # only inside the epubs
            shutil.copy(p, OUT / p.name)
            print(f"{p.name:32} {p.stat().st_size:7} bytes")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        from vm.image.build import image_tag

        main(image_tag())
