"""`hostgen boards`: every board file and its budget."""

from __future__ import annotations

SUMMARY = "list the boards and their budgets"


def add_arguments(parser) -> None:
    pass


def run(args) -> int:
    from hostgen.config.board import board_names, load_board

    for name in board_names():
        board = load_board(name)
        print(
            f"{name:<15} {board['title']:<52} budget {board.budget_bytes():>7,} B  "
            f"model flash {board['flash']['model_size_bytes']:>9,} B"
        )
    return 0
