import stat

from biofeed.sessions.report import client_report_html, write_private_text


def test_reports_escape_text_and_are_written_private(tmp_path):
    history = {
        "client": {"pseudonym": "anna<b>"},
        "sessions": [],
        "trend": {"set_point_before_uv": {}, "verdicts": {"real": {}, "sham": {}}},
    }
    text = client_report_html(history, [])
    assert "anna&lt;b&gt;" in text and "anna<b>" not in text
    assert text.startswith("<!DOCTYPE html>") and "0 session(s)" in text
    path = write_private_text(tmp_path / "r.html", text)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    write_private_text(path, "again")
    assert path.read_text() == "again"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
