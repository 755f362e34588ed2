"""A board link hands packets on in sequence only: a gap is filled by RESEND, or, when the board says
the frames are gone or does not answer, passed with the gap counted. Real ptys, the benchmark's board."""

from __future__ import annotations

import time

import pytest
from gateway_support import PlayedBoard

from hostgen.board.packets import SequenceTracker
from hostgen.gateway import links
from hostgen.gateway.config import BoardConfig
from hostgen.gateway.links import BoardLink


@pytest.fixture
def opened():
    made = []

    def open_link(board: PlayedBoard, tracker: SequenceTracker | None = None, node: int | None = None) -> BoardLink:
        link = BoardLink(BoardConfig("board0", str(board.path)), tracker or SequenceTracker())
        link.node = node  # a restarted gateway knows it from the spool
        assert link.open(), link.problem
        made.append((board, link))
        return link

    yield open_link
    for board, link in made:
        link.close()
        board.close()


def _read(link: BoardLink, until, timeout: float = 5.0) -> list[tuple[int, str, int]]:
    """(seq, verdict, missing before it) of what the link hands on, until `until(got)` holds."""
    got = []
    deadline = time.monotonic() + timeout
    while not until(got) and time.monotonic() < deadline:
        got += [(packet.seq, verdict, missing) for packet, _, verdict, missing in link.read()]
        time.sleep(0.01)
    return got


def _send(board: PlayedBoard, count: int) -> None:
    for _ in range(count):
        board.send("WINDOW", channel=0, decision=2, rms=900)


def test_a_garbled_frame_is_sent_again_and_handed_on_in_its_place(tmp_path, opened):
    board = PlayedBoard(tmp_path / "board0", node=5)
    link = opened(board)
    _send(board, 2)
    assert _read(link, lambda got: len(got) == 2) == [(0, "new", 0), (1, "new", 0)]
    board.send("ALERT", garbled=True, channel=0, rule=0, raised=1, value=9000, limit=4000)
    _send(board, 3)
    assert _read(link, lambda got: link.holding, 2) == [], "what came after the gap is held"
    board.serve()  # the board answers the RESEND
    got = _read(link, lambda got: len([g for g in got if g[1] != "duplicate"]) == 4)
    assert [g for g in got if g[1] != "duplicate"] == [(2, "new", 0), (3, "new", 0), (4, "new", 0), (5, "new", 0)]
    assert link.decoder.bad_frames == 1 and not link.holding


def test_frames_the_board_no_longer_holds_are_counted_missing_when_it_says_so(tmp_path, opened):
    board = PlayedBoard(tmp_path / "board0", node=5, ring_bytes=128)  # two frames
    link = opened(board)
    _send(board, 1)
    assert _read(link, lambda got: len(got) == 1) == [(0, "new", 0)]
    board.send("WINDOW", garbled=True, channel=0)
    _send(board, 4)
    assert _read(link, lambda got: link.holding, 2) == []
    board.serve()  # RESENDING: it sends from 4, the oldest it holds
    got = _read(link, lambda got: len([g for g in got if g[1] != "duplicate"]) == 4, timeout=links.HOLD_S / 2)
    assert [g for g in got if g[1] != "duplicate"] == [(2, "new", 1), (3, "new", 0), (4, "new", 0), (5, "new", 0)], \
        "handed on at the board's answer (not after the hold), the gap of one counted"


def test_a_board_that_does_not_resend_has_its_gap_counted_after_the_hold(tmp_path, opened, monkeypatch):
    monkeypatch.setattr(links, "HOLD_S", 0.3)
    board = PlayedBoard(tmp_path / "board0", node=5)
    link = opened(board)
    _send(board, 1)
    _read(link, lambda got: len(got) == 1)
    board.seq += 2  # two packets the board never sent: nothing to send again, and it does not answer
    _send(board, 2)
    assert _read(link, lambda got: len(got) == 2) == [(3, "new", 2), (4, "new", 0)]


def test_opening_a_link_asks_for_what_came_after_the_newest_committed(tmp_path, opened):
    """A restarted gateway: the tracker resumes from the spool's newest, and what the kernel no longer has comes again."""
    board = PlayedBoard(tmp_path / "board0", node=5)
    _send(board, 6)
    board.lose_unread()
    tracker = SequenceTracker()
    tracker.resume("board0", 2)
    link = opened(board, tracker, node=5)
    board.serve()
    got = _read(link, lambda got: len(got) == 3)
    assert got == [(3, "new", 0), (4, "new", 0), (5, "new", 0)]
