import nbformat
import pandas as pd
from nbformat.v4 import new_code_cell, new_notebook, new_output

from spimpact.publish.section import Section, Table
from spimpact.report.render import format_table, notebook_to_html, write_tables


def test_withheld_cells_are_stars_and_numbers_are_rounded():
    frame = pd.DataFrame({"n": pd.array([10, pd.NA], dtype="Int64"), "x": [1.234567, 2.0]})
    out = format_table(frame)
    assert out["n"].tolist() == [10, "*"]
    assert out["x"].tolist() == [1.235, 2]


def test_tables_are_written_as_csv_with_stars(tmp_path):
    frame = pd.DataFrame({"group": ["a", "b"], "n": pd.array([pd.NA, 15], dtype="Int64")})
    section = Section(title="T", tables=(Table("counts", "Counts", frame),))
    (path,) = write_tables(section, tmp_path)
    assert path.read_text() == "group,n\na,*\nb,15\n"


def test_html_is_offline_and_codeless(tmp_path):
    notebook = new_notebook()
    cell = new_code_cell("secret_code_here = 1")
    cell.outputs = [new_output("display_data", data={"text/markdown": "# Hello"})]
    notebook.cells = [cell]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    source = tmp_path / "r.ipynb"
    nbformat.write(notebook, source)
    html = notebook_to_html(source, tmp_path / "r.html", title="Report").read_text()
    assert "Hello" in html and "secret_code_here" not in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert "<script src" not in html
