"""HTML pieces of `econash report`: the page shell with its inline stylesheet, tables, figures and
the drill-down of one question.

The page must open anywhere with no network, so it holds no external reference at all: no
stylesheet, font or script link, images only as data URIs (report_plots.py), and no script (the
drill-down folds with <details>, which needs none). Every text that came from a model, a task or a
file goes through ``esc``, so a reply holding markup (``<img src=...>``) is shown, never run or loaded.
"""

from __future__ import annotations

import html
import json
from typing import Any, Iterable

from econash_plugins.commands.question_views import CallView, QuestionView

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #1d2329; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em;
  border-bottom: 1px solid #d0d7de; } h3 { font-size: 1em; }
.meta { color: #57606a; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.88em; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eaeef2; }
figcaption { font-size: 0.85em; color: #57606a; }
details { border: 1px solid #d0d7de; border-radius: 4px; margin: 0.3em 0; padding: 0.2em 0.6em; }
details > summary { cursor: pointer; }
details details { margin-left: 1em; }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f8fa; padding: 0.5em; margin: 0.2em 0 0.6em;
      font-size: 0.85em; max-height: 30em; overflow: auto; }
.right { color: #1a7f37; font-weight: 600; } .wrong { color: #cf222e; font-weight: 600; }
.ungraded { color: #57606a; } .note { background: #fff8c5; padding: 0.3em 0.6em; border-radius: 4px; }
.call { font-size: 0.9em; margin-top: 0.4em; }
"""


def esc(value: Any) -> str:
    """Any value as HTML text, quotes included (it may land in an attribute)."""
    return html.escape(value if isinstance(value, str) else json.dumps(value, default=str), quote=True)


def verdict(correct: bool | None, score: float | None = None) -> str:
    if correct is None:
        return '<span class="ungraded">not graded</span>' if score is None else f'<span class="ungraded">score {score:.3f}</span>'
    return '<span class="right">right</span>' if correct else '<span class="wrong">wrong</span>'


def table(header: Iterable[str], rows: Iterable[Iterable[Any]], css_class: str = "") -> str:
    """A table of escaped cells."""
    head = "".join(f"<th>{esc(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<table{attribute}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_values(rows: Iterable[tuple[str, Any]], first: str = "") -> str:
    """A two-column table of facts, keys as row headers (``first`` is raw HTML cells put before them)."""
    cells = "".join(f"<tr><th>{esc(key)}</th><td>{esc(value)}</td></tr>" for key, value in rows)
    return f"<table><tbody>{first}{cells}</tbody></table>"


def figure(uri: str, caption: str) -> str:
    return f'<figure><img src="{esc(uri)}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def notes(sentences: Iterable[str]) -> str:
    return "".join(f'<p class="note">{esc(sentence)}</p>' for sentence in sentences)


def call_block(call: CallView) -> str:
    """One call: what it was for, its action, weight, answer and tokens, then its whole text."""
    parts = [f"<b>{esc(call.step)}</b>" + ("" if call.step.startswith(call.role) else f" ({esc(call.role)})")]
    if call.action:
        parts.append(f"action {esc(call.action)}")
    if call.weight is not None:
        parts.append(f"weight {call.weight:.2f}")
    if call.answer is not None:
        parts.append(f"answer {esc(call.answer)} " + verdict(call.correct))
    parts.append(f"{call.prompt_tokens}+{call.completion_tokens} tokens" + (", cached" if call.cached else "")
                 + (", cut at its cap" if call.finish_reason == "length" else ""))
    return f'<div class="call">{" &middot; ".join(parts)}</div><pre>{esc(call.text)}</pre>'


def question_facts(view: QuestionView) -> str:
    """Gold, prediction, grade, tokens and the error of one answer (its question is shown apart)."""
    rows = [("gold", view.gold), ("prediction", view.prediction),
            ("tokens", f"{view.tokens} (prompt {view.prompt_tokens}, completion {view.completion_tokens}) "
                       f"in {view.calls_made} calls"),
            *((("cost", f"${view.cost:.4f}"),) if view.cost is not None else ()),
            *((("error", view.error),) if view.error else ())]
    return key_values(rows, f"<tr><th>grade</th><td>{verdict(view.correct, view.score)}</td></tr>")


def answer_body(view: QuestionView) -> str:
    """The facts and every call of one answer."""
    body = question_facts(view) + "".join(call_block(call) for call in view.calls)
    if view.commitment_skipped:
        body += '<div class="call"><b>commitment</b>: skipped, every executor gave the same answer</div>'
    if not view.calls and view.prediction_text is not None:
        body += ('<div class="call"><b>final text</b> (events.jsonl records no call for this question)</div>'
                 f"<pre>{esc(view.prediction_text)}</pre>")
    return body


def summary_line(view: QuestionView) -> str:
    return f"{esc(view.id)} &middot; {verdict(view.correct, view.score)} &middot; {view.tokens} tokens"


def question_details(view: QuestionView) -> str:
    """One question of a run, folded: its summary line, then the question, facts and calls."""
    question = f"<p><b>question</b></p><pre>{esc(view.question)}</pre>" if view.question is not None else ""
    return (f'<details class="question" id="q-{esc(view.phase)}-{esc(view.id)}"><summary>{summary_line(view)}'
            f"</summary>{question}{answer_body(view)}</details>")


def compared_question(question_id: str, question: str | None, answers: list[tuple[str, QuestionView]]) -> str:
    """One question of a comparison: each method's verdict in the summary line, each answer folded inside."""
    line = " &middot; ".join(f"{esc(name)} {verdict(view.correct, view.score)} ({view.tokens} tok)"
                             for name, view in answers)
    inner = "".join(f"<details><summary><b>{esc(name)}</b> &middot; {summary_line(view)}</summary>"
                    f"{answer_body(view)}</details>" for name, view in answers)
    text = f"<p><b>question</b></p><pre>{esc(question)}</pre>" if question is not None else ""
    return (f'<details class="question" id="q-{esc(question_id)}"><summary>{esc(question_id)}: {line}</summary>'
            f"{text}{inner}</details>")


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n")
