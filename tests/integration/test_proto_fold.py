"""common/proto.c folds `q` exactly as the server's SQL does: pt_q_fold
against PostgreSQL's lower() in the test database (UTF-8, C.UTF-8), for
every code point. The TUI filters live events with pt_q_fold, the server
filters lists with lower(); if they differed, a payment could show after a
reload but not live, or the other way round."""

import subprocess

from harness import build_file


def test_q_folding_is_the_databases_lower(pg):
    proc = subprocess.run([str(build_file("tests", "unit", "test-proto")), "--fold-table"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    ours = {tuple(int(v) for v in line.split()) for line in proc.stdout.splitlines()}
    rows = pg.psql("SELECT c, ascii(lower(chr(c))) FROM generate_series(1, 1114111) AS c "
                   "WHERE (c < 55296 OR c > 57343) AND lower(chr(c)) <> chr(c)")
    theirs = {(int(c), int(f)) for c, f in rows}
    assert len(theirs) > 1000, "the database folds only %d code points" % len(theirs)
    only_ours = sorted(ours - theirs)[:10]
    only_theirs = sorted(theirs - ours)[:10]
    assert ours == theirs, ("folded differently: only pt_q_fold %r, only lower() %r"
                            % (only_ours, only_theirs))
