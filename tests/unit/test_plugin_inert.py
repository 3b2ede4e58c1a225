# SPDX-License-Identifier: GPL-2.0
"""The plugin in a pytest session that collects no harness item and asks for no harness fixture: it installs no
signal handler (in the controller or in xdist workers), writes nothing to the harness cache and runs no cache GC."""

from __future__ import annotations

from helpers import check_inert, plain_session


def test_a_plain_session_does_not_notice_the_plugin(tmp_path):
    res, cache, handlers = plain_session(tmp_path, "--trace-config")
    assert "bpf_audit_harness" in res.stdout, res.stdout  # loaded by its entry point, as in any session of the venv
    check_inert(res, cache, handlers, {"main"})


def test_a_plain_xdist_session_does_not_notice_the_plugin(tmp_path):
    res, cache, handlers = plain_session(tmp_path, "-n", "2")
    check_inert(res, cache, handlers, {"main", "gw0", "gw1"})
