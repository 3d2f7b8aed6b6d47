"""Issue 12, items 1 to 9 and 12: the real turnchat in tmux, against the real
turnchatd and a partner that is a raw line client (Raw) or another real
turnchat, checked on the screen (capture-pane) after the exact sequences of
the issue: typing (send-keys -l), pasting (paste-buffer, bracketed or not),
resizing (resize-window) and leaving in every state. Item 5 (scripts) is
checked on the scripts' output and exit status."""

import shutil
import subprocess
import time
import unicodedata

import pytest

from conftest import client_env
from test_terminal import waiting_partner
from tmux_pane import Pane
from turnchat_helpers import TIMEOUT, TURNCHAT, scripted_server

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

ZWJ = "\u200d"
FAMILY = f"\U0001F468{ZWJ}\U0001F469{ZWJ}\U0001F467"


@pytest.fixture
def panes(tmp_path):
    """panes(daemon, name, *options, width=, height=, cwd=, config=): turnchat
    in a tmux pane, on the daemon's config (or config); every pane's tmux
    server is killed at the end."""
    made = []

    def make(daemon, name, *options, width=80, height=24, cwd=None, config=None):
        config = config or daemon.config
        pane = Pane([TURNCHAT, "-c", str(config), "-n", name, *options],
                    client_env(tmp_path), cwd=cwd, width=width, height=height)
        made.append(pane)
        return pane

    yield make
    for pane in made:
        pane.close()


def barret_speaks_first(daemon, panes, *options, **kw):
    """Cloud (raw) waits in turns mode; Barret joins in a pane and speaks first."""
    cloud = waiting_partner(daemon, "Cloud")
    barret = panes(daemon, "Barret", *options, **kw)
    assert cloud.line() == "PAIRED Barret turns peer"
    barret.wait_prompt("Barret> ")
    return cloud, barret


def free_pair(daemon, panes, *options, **kw):
    """Cloud (raw) waits in free mode; Barret joins in a pane."""
    cloud = waiting_partner(daemon, "Cloud", "free")
    barret = panes(daemon, "Barret", "--free", *options, **kw)
    assert cloud.line() == "PAIRED Barret free -"
    barret.wait_prompt("Barret> ")
    return cloud, barret


def columns(text):
    """The columns text takes on a terminal (wide characters two, joiners none)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else
               0 if c == ZWJ or unicodedata.combining(c) else 1 for c in text)


def in_order(rows, wanted):
    """True when every wanted row is on the screen once, in that order."""
    at = [rows.index(row) for row in wanted if rows.count(row) == 1]
    return len(at) == len(wanted) and at == sorted(at)


# --- 1. A paste on your turn ------------------------------------------------------

@pytest.mark.parametrize("bracketed", [False, True])
def test_1_a_paste_on_your_turn_goes_one_line_per_turn(daemon, panes, bracketed):
    cloud, barret = barret_speaks_first(daemon, panes)
    barret.paste("first pasted\nsecond pasted\nthird pasted\n", bracketed)
    if bracketed:
        barret.key("Enter")  # a bracketed paste waits in the input line for Enter
    barret.wait_prompt("Barret (Cloud's turn, 2 queued)> ")
    assert cloud.line() == "MSG first pasted"
    assert cloud.quiet(0.3), "the queued lines must wait for their turns"
    rows = barret.rows()
    assert not any("Not sent" in row for row in rows), rows
    assert not any("second pasted" in row for row in rows), "queued lines show when sent"
    cloud.send("got it")
    assert cloud.line() == "MSG second pasted"
    barret.wait_prompt("Barret (Cloud's turn, 1 queued)> ")
    cloud.send("and?")
    assert cloud.line() == "MSG third pasted"
    rows = barret.wait_prompt("Barret (Cloud's turn)> ")
    assert in_order(rows, ["Barret: first pasted", "Cloud: got it", "Barret: second pasted",
                           "Cloud: and?", "Barret: third pasted"]), rows


# --- 2. Lines out of turn, and leaving at once in every state -----------------------

def test_2_lines_typed_out_of_turn_are_never_joined(daemon, panes):
    cloud, barret = barret_speaks_first(daemon, panes)
    barret.line("Hey Cloud, you there?")
    assert cloud.line() == "MSG Hey Cloud, you there?"
    barret.line("typed two")
    barret.line("typed three")
    barret.wait_prompt("Barret (Cloud's turn, 2 queued)> ")
    assert cloud.quiet(0.3)
    cloud.send("Yeah.")
    assert cloud.line() == "MSG typed two"
    cloud.send("Go on.")
    assert cloud.line() == "MSG typed three"
    barret.wait_prompt("Barret (Cloud's turn)> ")


@pytest.mark.parametrize("how", ["/q", "/quit", "C-d", "C-c"])
@pytest.mark.parametrize("state", ["waiting", "their turn"])
def test_2_leaving_acts_at_once_and_lists_what_was_queued(daemon, panes, state, how):
    if state == "waiting":
        cloud, barret = None, panes(daemon, "Barret")
        barret.wait_for("-- Waiting for a partner in room 'lobby'...")
        queued = "hello"
    else:
        cloud, barret = barret_speaks_first(daemon, panes)
        barret.line("Hey Cloud, you there?")
        assert cloud.line() == "MSG Hey Cloud, you there?"
        queued = "gotta go"
    barret.line(queued)
    barret.wait(lambda rows: rows[-1].endswith("1 queued)>"), "the line queued")
    if how.startswith("/"):
        barret.line(how)
    else:
        barret.key(how)
    assert barret.exit_status() == (130 if how == "C-c" else 0)
    rows = barret.rows()
    why = "Leaving (Ctrl-C)" if how == "C-c" else "Leaving"
    assert in_order(rows, [f"-- {why}: 1 queued line was not sent:", f"-- 1. {queued}"]), rows
    if cloud:
        assert cloud.line() == "BYE peer-quit", "the queued line must never be sent"


# --- 3. The input line is drawn once --------------------------------------------

def test_3_the_input_line_is_never_drawn_twice(daemon, panes):
    cloud, barret = barret_speaks_first(daemon, panes)
    barret.line("Hey Cloud, you there?")
    assert cloud.line() == "MSG Hey Cloud, you there?"
    rows = barret.wait_prompt("Barret (Cloud's turn)> ")
    assert sum(row.count("Barret (") for row in rows) == 1, rows
    assert rows.count("Barret: Hey Cloud, you there?") == 1, rows
    barret.line("typed early")
    rows = barret.wait_prompt("Barret (Cloud's turn, 1 queued)> ")
    assert sum(row.count("Barret") for row in rows) == 2, rows  # the sent line and the prompt
    cloud.send("Yeah. What do you want?")
    assert cloud.line() == "MSG typed early"
    rows = barret.wait_prompt("Barret (Cloud's turn)> ")
    assert in_order(rows, ["Barret: Hey Cloud, you there?", "Cloud: Yeah. What do you want?",
                           "Barret: typed early", "Barret (Cloud's turn)>"]), rows


# --- 4. Resizing ---------------------------------------------------------------------

def test_4_resizing_never_erases_or_duplicates_anything(daemon, panes):
    cloud, barret = free_pair(daemon, panes, height=30)
    cloud.send("a message from Cloud")
    barret.wait_for("Cloud: a message from Cloud")
    typed = "x" * 100  # with the prompt, two rows at 80 columns
    barret.type(typed)
    barret.wait_for("x" * 72)
    for width in (40, 120, 33, 80, 60, 100, 79, 81):
        barret.resize(width)
        time.sleep(0.4)  # SIGWINCH, the client's redraw
        rows = barret.screen(history=True, joined=True)
        assert sum("Cloud: a message from Cloud" in row for row in rows) == 1, (width, rows)
        prompts = [row for row in rows if "Barret>" in row]
        assert prompts == ["Barret> " + typed], (width, rows)
    barret.key("Enter")
    assert cloud.line() == "MSG " + typed


# --- 5. Scripts ---------------------------------------------------------------------

def test_5_two_scripts_in_free_mode_see_each_others_lines(daemon, tmp_path):
    base = [TURNCHAT, "-c", str(daemon.config)]
    env = client_env(tmp_path)
    a = subprocess.Popen(base + ["-n", "A", "--free"], env=env, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    a.stdin.write("a1\na2\na3\n")
    a.stdin.close()
    assert "Waiting for a partner" in a.stdout.readline() + a.stdout.readline()
    b = subprocess.run(base + ["-n", "B"], env=env, text=True, input="b1\nb2\nb3\n",
                       capture_output=True, timeout=TIMEOUT)
    a_out, a_err = a.stdout.read(), a.stderr.read()
    assert a.wait(TIMEOUT) == 0, a_err
    assert b.returncode == 0, b.stderr
    assert in_order(a_out.splitlines(), ["B: b1", "B: b2", "B: b3"]), a_out
    assert in_order(b.stdout.splitlines(), ["A: a1", "A: a2", "A: a3"]), b.stdout


def test_5_a_script_is_told_of_its_input_the_conversation_ended_before(daemon, tmp_path):
    cloud = waiting_partner(daemon, "Cloud")
    script = subprocess.Popen([TURNCHAT, "-c", str(daemon.config), "-n", "Script"],
                              env=client_env(tmp_path), text=True, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    script.stdin.write("one\ntwo\nthree\n")
    script.stdin.close()
    assert cloud.line() == "PAIRED Script turns peer"
    assert cloud.line() == "MSG one"
    cloud.send("/q")
    assert script.wait(TIMEOUT) == 1
    out, err = script.stdout.read(), script.stderr.read()
    assert "Cloud left the conversation." in out
    assert "turnchat: 2 lines of your input were not sent" in err


def test_5_a_script_learns_that_lines_never_arrived(tmp_path):
    """The server relayed one of three lines before the partner left: the
    script is told on standard error and exits 1."""
    port, received = [], []
    thread = scripted_server([
        (b"", b"HELLO turnchat 1 fake\n"),
        (b"/join\n", b"CAPS action done\nPAIRED Mallory free -\n"),
        ((b"/done\n", b"/q\n"), b"RELAYED 1\nBYE peer-quit\n"),
    ], port, received)
    result = subprocess.run([TURNCHAT, "-H", "127.0.0.1", "-p", str(port[0]), "-n", "Script",
                             "--free"], env=client_env(tmp_path), capture_output=True,
                            text=True, timeout=TIMEOUT, input="one\ntwo\nthree\n")
    thread.join(TIMEOUT)
    assert b"one\ntwo\nthree\n/done\n" in received[0]
    assert "turnchat: 2 of your lines did not reach Mallory" in result.stderr
    assert result.returncode == 1


# --- 6. Notices on their own lines, nothing half-typed passed off as sent ---------------

def test_6_a_lost_connection_is_never_glued_to_the_input_line(make_daemon, panes):
    """The server is gone for good: the client tries to come back for as
    long as the server would have waited (resume_timeout), saying so on a
    row of its own, then gives up and says what was not sent."""
    daemon = make_daemon(server_settings="resume_timeout = 1;")
    cloud, barret = free_pair(daemon, panes)
    barret.type("typing something")
    barret.wait_for("Barret> typing something")
    daemon.proc.kill()
    daemon.proc.wait()
    barret.wait_for("Barret (reconnecting\u2026)> typing something")
    assert barret.exit_status() == 1
    rows = barret.rows()
    assert in_order(rows, [
        "-- Connection lost; reconnecting...",
        "-- turnchat: the conversation could not be resumed: no way back to 127.0.0.1",
        f"   port {daemon.port} in 1 seconds (Connection refused)",
        "-- The conversation is over: not sent, the line you were typing:",
        "-- typing something"]), rows
    assert not any("Barret>" in row for row in rows), rows


def test_6_ctrl_c_says_the_half_typed_line_was_not_sent(daemon, panes):
    cloud, barret = free_pair(daemon, panes)
    barret.type("half typed")
    barret.wait_for("Barret> half typed")
    barret.key("C-c")
    assert barret.exit_status() == 130
    rows = barret.rows()
    assert in_order(rows, ["-- Leaving (Ctrl-C): not sent, the line you were typing:",
                           "-- half typed"]), rows
    assert not any(row.endswith("half typed") and not row.startswith("--") for row in rows), rows
    assert cloud.line() == "BYE peer-quit"


def test_6_no_prompt_stays_after_the_partner_leaves(daemon, panes):
    cloud, barret = barret_speaks_first(daemon, panes)
    barret.line("Hey Cloud, you there?")
    assert cloud.line() == "MSG Hey Cloud, you there?"
    barret.wait_prompt("Barret (Cloud's turn)> ")
    cloud.send("/q")
    assert barret.exit_status() == 0
    rows = barret.rows()
    assert rows[-2:] == ["-- Cloud left the conversation.", "EXIT=0"], rows
    assert not any(row.startswith("Barret (") or row == "Barret>" for row in rows), rows


# --- 7. A paste ending in a newline ---------------------------------------------------

def test_7_a_paste_ending_in_a_newline_sends_just_the_line(daemon, panes):
    cloud, barret = free_pair(daemon, panes)
    # A terminal's bracketed paste stays in the input line until Enter.
    barret.paste("pasted line\n", bracketed=True)
    barret.key("Enter")
    assert cloud.line() == "MSG pasted line"
    # A raw paste is as if typed, Enter and all.
    barret.paste("raw paste\n")
    assert cloud.line() == "MSG raw paste"
    barret.wait_prompt("Barret> ")
    assert cloud.quiet(0.3)
    rows = barret.rows()
    assert not any("Not sent" in row for row in rows), rows
    assert in_order(rows, ["Barret: pasted line", "Barret: raw paste"]), rows


# --- 8. A joined emoji sequence -------------------------------------------------------

def test_8_a_family_emoji_keeps_the_cursor_where_the_text_is(daemon, panes):
    """Whatever the screen shows in the input line is what is sent, and the
    cursor is where the next character goes."""
    cloud, barret = free_pair(daemon, panes)
    barret.type(f"family {FAMILY} emoji")
    barret.wait_for("emoji")
    for _ in range(8):  # " emoji", the girl, and a joiner or the woman
        barret.key("Left")
    barret.type("Z")
    shown = barret.wait(lambda rows: "Z" in rows[-1], "Z typed")[-1]
    assert shown.startswith("Barret> family "), shown
    x, _ = barret.cursor()
    assert x == columns(shown[:shown.index("Z") + 1]), (x, shown)
    barret.key("Enter")
    sent = cloud.line()
    assert sent.startswith("MSG ")
    assert shown == "Barret> " + sent[4:].replace(ZWJ, "<U+200D>"), (shown, sent)


def test_8_a_pasted_family_emoji_leaves_the_prompt_whole(daemon, panes):
    cloud, barret = free_pair(daemon, panes)
    barret.paste(f"{FAMILY}{FAMILY}{FAMILY}")
    rows = barret.wait(lambda rows: rows[-1].count("<U+200D>") == 6, "the paste")
    assert rows[-1] == "Barret> " + 3 * FAMILY.replace(ZWJ, "<U+200D>"), rows[-1]
    barret.key("Enter")
    assert cloud.line() == "MSG " + 3 * FAMILY


# --- 9. TAB ---------------------------------------------------------------------------

def test_9_tab_inserts_a_tab_and_completes_nothing(daemon, panes, tmp_path):
    (tmp_path / "README.md").write_text("a local file the partner must not see\n")
    cloud, barret = free_pair(daemon, panes, cwd=tmp_path)
    barret.type("see REA")
    barret.key("Tab")
    barret.type("ok")
    barret.wait_for("ok")
    barret.key("Enter")
    assert cloud.line() == "MSG see REA\tok"
    assert not any("README.md" in row for row in barret.rows())


# --- 12. A partner's line never passes for a notice -----------------------------------

def test_12_a_partner_cannot_fake_a_notice(daemon, panes):
    mallory = waiting_partner(daemon, "Mallory", "free")
    barret = panes(daemon, "Barret", "--free", width=120)
    assert mallory.line() == "PAIRED Barret free -"
    barret.wait_prompt("Barret> ")
    mallory.send("hi" + " " * 109 + "Mallory left the conversation.")
    mallory.send("x" * 150 + " -- Mallory left the conversation.")
    rows = barret.wait(lambda rows: sum("Mallory left" in row for row in rows) == 2,
                       "both lines shown")
    for row in rows:
        assert not row.startswith("Mallory left"), rows
        assert not row.startswith("-- Mallory"), rows
    mallory.send("/q")
    rows = barret.wait(lambda rows: "-- Mallory left the conversation." in rows, "the real one")
    assert rows.count("-- Mallory left the conversation.") == 1, rows


def test_12_bidi_zero_width_and_separators_are_shown_escaped(daemon, panes):
    cloud, barret = free_pair(daemon, panes, width=120)
    cloud.send("abc\u202edef zero\u200bwidth line\u2028sep para\u2029sep bom\ufeff")
    barret.wait_for("Cloud: abc<U+202E>def zero<U+200B>width line<U+2028>sep "
                    "para<U+2029>sep bom<U+FEFF>")
    cloud.send(f"a {FAMILY} family")
    barret.wait_for("Cloud: a " + FAMILY.replace(ZWJ, "<U+200D>") + " family")
