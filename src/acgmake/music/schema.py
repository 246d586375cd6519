"""Checking a MusicXML file against the MusicXML 4.0 schema (XSD), offline.

The W3C Music Notation Community Group's ``musicxml.xsd`` (4.0, published under the W3C
Community Final Specification Agreement) is read from the ``musicxml`` package on PyPI, which
ships it unchanged as ``musicxml/generate_classes/musicxml_4_0.xsd``; the two W3C schemas it
imports (``xml.xsd``, ``xlink.xsd``) come with ``xmlschema``. Both are test dependencies:
acgmake uses the check in its tests and ``benchmarks/compose_report.py``, never on a user's
score (notation programs write scores that sing fine but bend the schema).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

XSD_PACKAGE = "musicxml"
XSD_PATH = ("generate_classes", "musicxml_4_0.xsd")


def schema_errors(path: str | Path, *, limit: int = 20) -> list[str]:
    """The schema violations of the MusicXML file at ``path`` (at most ``limit``); [] if valid.

    Raises RuntimeError when the schema or ``xmlschema`` is not installed.
    """
    errors = []
    for error in _schema().iter_errors(str(path)):
        errors.append(f"{error.path}: {error.reason}")
        if len(errors) >= limit:
            break
    return errors


@functools.lru_cache(maxsize=1)
def _schema():
    try:
        import xmlschema
    except ImportError:
        raise RuntimeError("checking MusicXML needs xmlschema: pip install xmlschema") from None
    spec = importlib.util.find_spec(XSD_PACKAGE)  # finds the folder without importing it
    locations = spec.submodule_search_locations if spec else None
    xsd = Path(next(iter(locations)), *XSD_PATH) if locations else None
    if xsd is None or not xsd.is_file():
        raise RuntimeError(
            f"the MusicXML 4.0 schema comes with the {XSD_PACKAGE} package: "
            f"pip install {XSD_PACKAGE}"
        )
    bundled = Path(xmlschema.__file__).parent / "schemas"
    return xmlschema.XMLSchema(
        str(xsd),
        locations=[
            ("http://www.w3.org/XML/1998/namespace", str(bundled / "XML" / "xml.xsd")),
            ("http://www.w3.org/1999/xlink", str(bundled / "XLINK" / "xlink.xsd")),
        ],
    )
