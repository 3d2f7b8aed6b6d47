"""The resume side of the chaos test (issue 14), run by chaos.py next to
the honest pairs and the hostile actors: resumable conversations
(tests/lib/resumable.py) dropped all at once and resumed, wrong and spent
tokens, resumes while a partner quits or says /done, resumes while the old
connection is still open (the half-open case), and slow acknowledgers.
Every resumed pair must lose and repeat nothing (lost_or_doubled), and
each actor checks what the daemon owes it besides; problems go to the
shared list, and every token seen goes to TOKENS, for chaos.py to check
that the log holds none.

Each actor is a plain function running its own resumable.Loop in a thread
of its own (actors() wraps them for asyncio). Their connections pass
through chaos.py's door, as the hostile actors' do, so that none arrives
while the server is filled on purpose. Every loop is bounded in count and
time."""

import asyncio
import concurrent.futures
import functools
import random
import socket
import time

from hostile import SLOW_TIMEOUT
from resumable import Loop, connector, lost_or_doubled, pair
from turnchat_helpers import Raw

TOKENS = set()
WAIT = 20  # seconds any one step may take


def gate(door, aloop):
    """A connect() wrapper: takes chaos.py's door (an asyncio.Lock in the
    event loop's thread), connects, and lets go once the daemon has greeted
    the connection, so that it counts before the door opens for fill."""
    def wrap(connect):
        def connect_through_door():
            asyncio.run_coroutine_threadsafe(door.acquire(), aloop).result()
            try:
                sock = connect()
                deadline = time.monotonic() + 5
                while b"\n" not in sock.recv(256, socket.MSG_PEEK) and \
                        time.monotonic() < deadline:
                    time.sleep(0.01)
                return sock
            finally:
                aloop.call_soon_threadsafe(door.release)
        return connect_through_door
    return wrap


class Cast:
    """The pairs of one actor: a Loop, addresses of its own, checks at the end."""

    def __init__(self, port, sources, through, label, problems):
        self.port, self.sources, self.through = port, sources, through
        self.label, self.problems = label, problems
        self.loop, self.pairs = Loop(), []

    def connect(self):
        return self.through(connector(self.port, source=next(self.sources)))

    def pair(self, mode, **kw):
        i = len(self.pairs)
        stem = self.label.replace(" ", "")[:12]
        names = (f"{stem}w{i}", f"{stem}c{i}")
        made = pair(self.loop, (self.connect(), self.connect()), names[0], mode, names,
                    WAIT, seed=hash((self.label, i)), **kw)
        self.pairs.append(made)
        return made

    def everyone(self):
        return [c for p in self.pairs for c in p]

    def run(self, until, what):
        self.loop.run(until, WAIT, f"{self.label}: {what}")

    def problem(self, text):
        self.problems.append(f"{self.label}: {text}")

    def check(self, pairs=None, complete=True):
        """Nothing lost, nothing repeated, no ERR; the tokens noted."""
        for a, b in self.pairs if pairs is None else pairs:
            for p in lost_or_doubled(a, b, complete):
                self.problem(p)
            TOKENS.update(c.token for c in (a, b) if c.token)

    def finish(self):
        """Every line delivered, then /done on both sides: BYE done to all."""
        self.run(lambda: all(c.delivered or c.ended for c in self.everyone()), "delivery")
        for c in self.everyone():
            c.done()
        self.run(lambda: all(c.ended for c in self.everyone()), "BYE done")
        for c in self.everyone():
            if c.ended != "done":
                self.problem(f"{c.describe()}, not done")
        self.check()


def talk(cast, lines, seed):
    """Each side of a pair still talking says lines lines, some long; turns
    mode takes them in turns."""
    rng = random.Random(seed)
    talking = [c for c in cast.everyone() if not c.ended]
    for n in range(lines):
        for c in talking:
            c.say(f"{c.name} {n} " + "y" * rng.choice((0, 10, 200)))
        cast.loop.wait(rng.uniform(0.01, 0.05))


def storm(port, sources, through, problems, seed, pairs=12, storms=3):
    """pairs pairs, half in free mode, all dropped at once storms times (each
    in a way of its own) while they talk; every one must come back and carry on."""
    cast = Cast(port, sources, through, f"storm {seed}", problems)
    rng = random.Random(seed)
    took = []
    try:
        for i in range(pairs):
            cast.pair(("turns", "free")[i % 2])
        for k in range(storms):
            talk(cast, 6, seed * 10 + k)
            before = [c.resumes for c in cast.everyone()]
            started = time.monotonic()
            for c in cast.everyone():
                c.drop(rng.choice(("close", "reset", "shutdown", "abandon")))
            cast.run(lambda: all(c.resumes > b or c.ended for c, b in
                                 zip(cast.everyone(), before)), f"everyone back from storm {k}")
            took.append(time.monotonic() - started)
        talk(cast, 4, seed)
        cast.finish()
        return f"storm {seed}: {pairs} pairs back in " + ", ".join(f"{t:.2f}" for t in took) + " s"
    finally:
        cast.loop.close()


def tokens(port, sources, through, problems, seed):
    """A spent token (its client has spoken since), then made-up ones, from
    an address of its own: ERR no-session twice, then BYE flood and the
    address turned away; the pair whose token was spent talks on, untouched."""
    cast = Cast(port, sources, through, f"tokens {seed}", problems)
    try:
        waiter, caller = cast.pair("free")
        talk(cast, 3, seed)
        spent = waiter.token
        waiter.drop("close")
        cast.run(lambda: waiter.resumes == 1, "the resume")
        # The token a /resume came with is good until the client speaks.
        waiter.say("back")
        cast.run(lambda: waiter.delivered, "a word on the new connection")
        thief_address = next(sources)
        thief = Raw.over(through(connector(port, source=thief_address))())
        answers = []
        try:
            thief.line()
            thief.send("/caps resume")
            thief.line()
            for token in (spent, f"{random.Random(seed).getrandbits(128):032x}", spent):
                thief.send(f"/resume {token} 0")
                answers.append(thief.line().split(" ")[:2])
        except (ConnectionResetError, TimeoutError):
            answers.append(["reset"])  # the reset after BYE flood may overtake it
        finally:
            thief.close()
        if answers[:2] != [["ERR", "no-session"]] * 2 or answers[2] not in (["BYE", "flood"],
                                                                            ["reset"]):
            cast.problem(f"answers to wrong tokens: {answers}")
        talk(cast, 3, seed + 1)
        if any("dropped" in text for text in caller.info[1:]):
            cast.problem(f"{caller.name} heard of a drop nobody made: {caller.info}")
        cast.finish()
        return f"tokens {seed}"
    finally:
        cast.loop.close()


def quits(port, sources, through, problems, seed):
    """Someone away while the partner quits or says /done, and someone who
    quits and drops at once: each learns how the conversation ended."""
    cast = Cast(port, sources, through, f"quits {seed}", problems)
    try:
        away, quitter = cast.pair("turns")
        talk(cast, 2, seed)
        cast.run(lambda: away.delivered and quitter.delivered, "delivery")
        # The quit may come before the daemon hears of the drop, or after.
        away.drop("reset", after=1)
        quitter.say("last words")
        quitter.say("and more")  # not its turn: never said
        quitter.quit()
        cast.run(lambda: away.ended and quitter.ended, "the quit, while away")
        if (away.ended, quitter.ended) != ("peer-quit", "quit") or \
                away.received[-1:] != [("MSG", "last words")]:
            cast.problem(f"away while the partner quit: {away.describe()}; {quitter.describe()}")
        cast.check([(away, quitter)], complete=False)
        for how in ("close", "reset"):
            leaver, stayer = cast.pair("free")
            talk(cast, 2, seed)
            cast.run(lambda: leaver.delivered and stayer.delivered, "delivery")
            leaver.quit()
            leaver.drop(how)
            cast.run(lambda: leaver.ended and stayer.ended, f"/q and {how}")
            if leaver.ended not in ("quit", "no-session") or stayer.ended != "peer-quit":
                cast.problem(f"/q and {how}: {leaver.describe()}; {stayer.describe()}")
        late, early = cast.pair("free")
        late.drop("close", after=0.5)
        early.done()
        late.done()
        cast.run(lambda: late.ended and early.ended, "/done while away")
        if (late.ended, early.ended) != ("done", "done"):
            cast.problem(f"/done while away: {late.describe()}; {early.describe()}")
        cast.check(cast.pairs[1:])
        return f"quits {seed}"
    finally:
        cast.loop.close()


def half_open(port, sources, through, problems, seed, rounds=5):
    """A new connection resumes while the old one is still open: the daemon
    closes the old one, and the partner hears of no drop."""
    cast = Cast(port, sources, through, f"half-open {seed}", problems)
    try:
        mover, partner = cast.pair("free")
        for k in range(rounds):
            talk(cast, 3, seed + k)
            mover.drop("abandon")
            cast.run(lambda: mover.resumes == k + 1 and mover.abandoned_closed(),
                     f"resume {k} and the old connection closed")
        if partner.info:
            cast.problem(f"{partner.name} was told {partner.info}")
        cast.finish()
        return f"half-open {seed}"
    finally:
        cast.loop.close()


def slow_ackers(port, sources, through, problems, seed):
    """One acknowledges late (but within slow_timeout): its partner is held
    back and loses nothing. One never does: it is let go (too-slow), after
    everything its partner got through arrived."""
    cast = Cast(port, sources, through, f"slow ackers {seed}", problems)
    try:
        writer, slow = cast.pair("free")
        slow.ack_delay = SLOW_TIMEOUT / 3
        for n in range(150):
            writer.say(f"{n} " + "z" * 400)  # 60 KB: past half of max_queue
        cast.finish()
        writer, never = cast.pair("free", ack_delay=None)
        writer.ack_delay = 0.2
        for n in range(400):
            writer.say(f"{n} " + "z" * 400)
        cast.run(lambda: writer.ended and never.ended, "the one who never acknowledges let go")
        if (writer.ended, never.ended) != ("peer-lost", "too-slow") or \
                writer.relayed != len(never.received):
            cast.problem(f"never acknowledging: {writer.describe()}, RELAYED {writer.relayed}; "
                         f"{never.describe()}")
        cast.check(cast.pairs[1:], complete=False)
        return f"slow ackers {seed}"
    finally:
        cast.loop.close()


def actors(port, problems, door):
    """The resume actors as coroutines, each running on a thread of its own
    from the pool returned with them (shut it down after them)."""
    plan = [(storm, 0), (storm, 1), (tokens, 0), (tokens, 1), (quits, 0), (half_open, 0),
            (half_open, 1), (slow_ackers, 0)]
    pool = concurrent.futures.ThreadPoolExecutor(len(plan), "resumer")

    async def on_thread(fn, sources, seed):
        aloop = asyncio.get_running_loop()
        return await aloop.run_in_executor(pool, functools.partial(
            fn, port, sources, gate(door, aloop), problems, seed))

    # Addresses of each actor's own (at most 30 here, each storm 254), so
    # that no limit per address, nor a turned-away address, is shared.
    blocks = [iter([f"127.0.{6 + i}.{b}" for b in range(1, 255)]) for i in range(2)]
    blocks += [iter([f"127.0.8.{30 * i + b}" for b in range(1, 31)]) for i in range(len(plan) - 2)]
    return [on_thread(fn, sources, seed) for (fn, seed), sources in zip(plan, blocks)], pool
