"""Reading contact files: encodings, delimiters, headers, quoting, row numbers (no database)."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from campaigns.errors import UserError
from campaigns.importer.columns import map_columns, metadata_keys, snake_case
from campaigns.importer.reader import ChunkReader, read_header, sniff

ROWS = [
    ["Phone", "Customer Name", "City"],
    ["+919845012345", "Zoë Ñúñez", "Bengaluru"],
    ["09847012345", "Priya, Nair", "Kochi"],
]


def _csv_text(rows: list[list[str]], delim: str = ",", newline: str = "\n") -> str:
    def cell(v: str) -> str:
        if any(ch in v for ch in (delim, '"', "\n", "\r")):
            return '"' + v.replace('"', '""') + '"'
        return v

    return "".join(delim.join(cell(v) for v in r) + newline for r in rows)


def _read_all(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    fmt = sniff(path)
    headers = read_header(path, fmt)
    rows: list[tuple[int, list[str]]] = []
    for first, columns in ChunkReader(path, fmt, len(headers), chunk_rows=2):
        for j, cells in enumerate(zip(*columns, strict=True)):
            rows.append((first + j, list(cells)))
    return headers, rows


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", codecs.BOM_UTF8, "utf-8-sig"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "utf-16"),
        ("utf-16-le", b"", "utf-16-le"),
        ("cp1252", b"", "cp1252"),
    ],
)
def test_each_encoding_reads_the_same_values(
    tmp_path: Path, encoding: str, bom: bytes, expected: str
) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(bom + _csv_text(ROWS).encode(encoding))
    assert sniff(path).encoding == expected
    headers, rows = _read_all(path)
    assert headers == ROWS[0]
    assert [cells for _, cells in rows] == ROWS[1:]


def test_latin1_when_cp1252_would_fail(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"phone,name\n+919845012345,caf\xe9 \x81\n")
    assert sniff(path).encoding == "latin-1"
    _, rows = _read_all(path)
    assert rows[0][1][1] == "café \x81"


@pytest.mark.parametrize("delim", [",", ";", "\t"])
def test_each_delimiter_is_detected(tmp_path: Path, delim: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(_csv_text(ROWS, delim), encoding="utf-8")
    assert sniff(path).delimiter == delim
    headers, rows = _read_all(path)
    assert headers == ROWS[0]
    assert [cells for _, cells in rows] == ROWS[1:]


def test_semicolon_file_with_commas_in_cells(tmp_path: Path) -> None:
    rows = [["phone", "notes"], ["+919845012345", "a, b, c, d"], ["+919847012345", "e, f"]]
    path = tmp_path / "c.csv"
    path.write_text(_csv_text(rows, ";"), encoding="utf-8")
    assert sniff(path).delimiter == ";"
    assert [c for _, c in _read_all(path)[1]] == rows[1:]


def test_crlf_quoted_newlines_and_row_numbers(tmp_path: Path) -> None:
    rows = [
        ["phone", "notes"],
        ["1", "line one\r\nline two, with comma"],
        ["2", 'say "hi"'],
        ["3", ""],
    ]
    path = tmp_path / "c.csv"
    path.write_bytes(_csv_text(rows, ",", "\r\n").encode())
    _, got = _read_all(path)
    assert [c for _, c in got] == rows[1:]
    # spreadsheet row numbers: header is row 1; a quoted line break does not start a row
    assert [n for n, _ in got] == [2, 3, 4]


def test_blank_lines_keep_their_row_number(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("phone,name\n1,a\n\n3,c\n", encoding="utf-8")
    _, got = _read_all(path)
    assert got == [(2, ["1", "a"]), (3, ["", ""]), (4, ["3", "c"])]


def test_values_stay_exactly_as_written(tmp_path: Path) -> None:
    rows = [["phone", "a", "b", "c"], ["007", "NA", "null", " 1.50 "]]
    path = tmp_path / "c.csv"
    path.write_text(_csv_text(rows), encoding="utf-8")
    assert _read_all(path)[1][0][1] == ["007", "NA", "null", " 1.50 "]


def test_header_whitespace_and_case(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("  MOBILE Number ,\tCustomer Name ,city\n1,a,b\n", encoding="utf-8")
    headers = read_header(path, sniff(path))
    assert headers == ["MOBILE Number", "Customer Name", "city"]
    cmap = map_columns(path, headers, phone_column=None, name_column=None)
    assert (cmap.phone, cmap.name) == (0, 1)
    assert cmap.keys == ["mobile_number", "customer_name", "city"]


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Customer Name", "customer_name"),
        ("customerName", "customer_name"),
        ("E-mail (work)", "e_mail_work"),
        ("  Préférence  ", "préférence"),
        ("नाम", "नाम"),
        ("%%", ""),
    ],
)
def test_snake_case(header: str, key: str) -> None:
    assert snake_case(header) == key


def test_metadata_keys_are_unique() -> None:
    assert metadata_keys(["Name", "name", "NAME ", "#", ""]) == [
        "name",
        "name_2",
        "name_3",
        "column_4",
        "column_5",
    ]


def test_phone_column_given_or_found(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    headers = ["Account Number", "WhatsApp", "Phone"]
    assert map_columns(p, headers, phone_column=None, name_column=None).phone == 2
    assert map_columns(p, headers, phone_column="whatsapp", name_column=None).phone == 1
    assert map_columns(p, headers, phone_column=" account number", name_column=None).phone == 0
    with pytest.raises(UserError, match=r"no column 'cell'.*'Account Number', 'WhatsApp'"):
        map_columns(p, headers, phone_column="cell", name_column=None)


def test_no_phone_column_lists_headers_and_suggests_flag(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    with pytest.raises(UserError) as err:
        map_columns(p, ["Customer", "Contact"], phone_column=None, name_column=None)
    msg = str(err.value)
    assert str(p) in msg and "'Customer', 'Contact'" in msg and "--phone-column" in msg


def test_first_and_last_name_columns(tmp_path: Path) -> None:
    cmap = map_columns(
        tmp_path / "x", ["First Name", "Last Name", "tel"], phone_column=None, name_column=None
    )
    assert (cmap.name, cmap.first_name, cmap.last_name, cmap.phone) == (None, 0, 1, 2)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"PK\x03\x04\x14\x00\x06\x00", "Excel"),
        (b"\x00\x01\x02\x03binary\x00\xff\x00\x10", "binary"),
    ],
)
def test_whole_file_problems(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as err:
        sniff(path)
    assert str(path) in str(err.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        sniff(tmp_path / "nope.csv")
    with pytest.raises(UserError, match="directory"):
        sniff(tmp_path)


def test_undecodable_byte_deep_inside_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"phone,name\n" + b"+919845012345,ok\n" * 20_000 + b"1,\xff\xfe\n")
    fmt = sniff(path)
    assert fmt.encoding == "utf-8"
    with pytest.raises(UserError, match=r"cannot be decoded as utf-8.*UTF-8"):
        for _ in ChunkReader(path, fmt, 2, chunk_rows=5000):
            pass


def test_row_with_too_many_cells_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("phone,name\n1,a\n2,b,c\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"line 3.*quoted"):
        _read_all(path)


def test_undecodable_byte_at_row_50000_names_the_row_and_byte_offset(tmp_path: Path) -> None:
    """A cp1252 byte deep in a file that starts as valid UTF-8 (issue 13)."""
    path = tmp_path / "c.csv"
    head = b"phone,name\n" + b"".join(b"+9198%08d,Name %d\n" % (i, i) for i in range(2, 50_000))
    path.write_bytes(head + b"+919800000000,Ren\xe9e\n" + b"+919800000001,x\n" * 50)
    fmt = sniff(path)
    assert fmt.encoding == "utf-8"
    with pytest.raises(UserError) as err:
        for _ in ChunkReader(path, fmt, 2):
            pass
    msg = str(err.value)
    assert f"row 50000, byte offset {len(head) + 17}: byte 0xe9" in msg
    assert "cannot be decoded as utf-8" in msg and "nothing was imported" in msg


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_bad_byte_row_counts_quoted_line_breaks_and_blank_lines(
    tmp_path: Path, newline: str
) -> None:
    """Spreadsheet rows: a quoted line break stays in its row, a blank line is a row."""
    rows = [["phone", "note"], ["+919845012345", "two\nlines, quoted"]]
    rows += [[f"+9198450{i:05d}", "ok"] for i in range(5000)]  # rows 3..5002
    path = tmp_path / "c.csv"
    # row 5003 is blank; the bad byte is in row 5004's second cell
    text = _csv_text(rows, newline=newline) + newline
    path.write_bytes(text.encode() + b"+919845012347,caf\xe9\n")
    assert sniff(path).encoding == "utf-8"  # the sample (first 64 KB) decodes
    with pytest.raises(UserError, match=rf"row 5004, byte offset {len(text) + 17}: byte 0xe9"):
        _read_all(path)


def test_bad_byte_in_the_sniffed_sample_names_row_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"phone,name\n+919845012345,Ren\xe9e\n")
    with pytest.raises(UserError, match=r"row 2, byte offset 31: byte 0xe9"):
        sniff(path)


def _random_text_free_bytes(n: int) -> bytes:
    """Random bytes with no NUL (a file that slips past the NUL check)."""
    import random

    data = bytes(b for b in random.Random(13).randbytes(n) if b)
    assert not data.startswith((codecs.BOM_UTF8, b"\xff\xfe", b"\xfe\xff"))
    return data


def test_random_bytes_without_nul_are_binary(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(_random_text_free_bytes(100_000))
    with pytest.raises(UserError, match="looks like a binary file") as err:
        sniff(path)
    assert len(str(err.value)) < 300


def test_random_bytes_as_a_dnc_file_are_refused(tmp_path: Path) -> None:
    from campaigns.importer.dncfile import read_dnc_file
    from campaigns.importer.phones import PhoneParser

    path = tmp_path / "dnc.txt"
    path.write_bytes(_random_text_free_bytes(100_000))
    with pytest.raises(UserError, match="looks like a binary file"):
        read_dnc_file(path, PhoneParser("IN"))


def test_text_with_tabs_and_vertical_tabs_is_not_binary(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"phone\tnote\n" + b"+919845012345\tline\x0bbreak\x0c\n" * 50)
    assert sniff(path).delimiter == "\t"


def test_a_bad_byte_deep_in_a_dnc_file_names_its_line(tmp_path: Path) -> None:
    from campaigns.importer.dncfile import read_dnc_file
    from campaigns.importer.phones import PhoneParser

    path = tmp_path / "dnc.txt"
    path.write_bytes(b"+919845012345\n" * 10_000 + b"+91984501\xe9\n")
    with pytest.raises(UserError, match=r"row 10001, byte offset 140009: byte 0xe9"):
        read_dnc_file(path, PhoneParser("IN"))


def test_column_listing_is_cut_to_a_few_hundred_characters(tmp_path: Path) -> None:
    headers = [f"column number {i} " + "x" * (i % 90) for i in range(20_000)]
    with pytest.raises(UserError) as err:
        map_columns(tmp_path / "x.csv", headers, phone_column=None, name_column=None)
    msg = str(err.value)
    assert len(msg) < 800 and "more" in msg and "--phone-column" in msg
    with pytest.raises(UserError) as err:
        map_columns(tmp_path / "x.csv", headers, phone_column="tel", name_column=None)
    assert len(str(err.value)) < 800


def test_valid_utf8_with_control_characters_in_cells_is_text(tmp_path: Path) -> None:
    """Cells may hold control characters (the metadata round-trip property imports them)."""
    path = tmp_path / "c.csv"
    path.write_bytes("phone,note\n+919845012345,\x1f\x1f\x01\x02 Zoë\n".encode())
    assert sniff(path).encoding == "utf-8"
