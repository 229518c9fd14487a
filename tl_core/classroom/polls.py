"""Class polls: an instructor opens a class, pushes any question as a poll, and students' answers are tallied live.

A class is known by a short code (`ClassRegistry.open_class`), shared in the class link. Students who open the link
`join` it under an opaque member token (kept in their tab's URL, so a reload is the same member); nothing else is
stored about them: the registry holds counts and one answer per member and poll, never a name. A poll is any
question with its options (`Poll`): the race's "which lane will win?" (`race_poll`) or a quiz question. A member
votes once per poll and a revote replaces the earlier answer, so a reload never counts twice. When the answer is
known (the race finished), `reveal` records it and every view of the class shows it next to the class's tally.
Classes expire CLASS_TTL_S after they were opened. Process-wide and thread-safe (`get_registry`); torch-free.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tl_core.settings import positive_float

if TYPE_CHECKING:
    from tl_core.classroom.presets import Preset

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a projector and typed without doubt
CODE_LENGTH = 5  # 31**5 ≈ 29 million codes
MAX_MEMBERS = 500  # members one class counts (a class link posted somewhere public cannot grow the server forever)
MAX_POLLS = 200  # polls one class keeps (each push of a new question adds one)
MAX_CLASSES = 1000  # open classes at once; the oldest are closed first when more are opened


CLASS_TTL_S = 3600 * positive_float("TLP_CLASS_HOURS", 4.0)  # a class expires this long after it was opened


class ClassClosed(ValueError):
    """The class code is unknown or the class has expired."""


@dataclass(frozen=True)
class Poll:
    """A question put to the class: its options (stable keys) and their labels (what students read)."""

    id: str  # identifies the question; pushing a poll with the same id again keeps its votes
    prompt: str  # the question
    options: tuple[str, ...]  # the answers' keys, in the order shown
    labels: tuple[str, ...]  # the answers as shown, one per option

    def __post_init__(self) -> None:
        if not self.id or not self.prompt.strip():
            raise ValueError("A poll needs an id and a question.")
        if len(self.options) < 2:
            raise ValueError(f"A poll needs at least two options; got {len(self.options)}.")
        if len(set(self.options)) != len(self.options):
            raise ValueError(f"A poll's options must differ from each other; got {list(self.options)}.")
        if len(self.labels) != len(self.options):
            raise ValueError(f"A poll needs one label per option: {len(self.options)} options, "
                             f"{len(self.labels)} labels.")

    def label(self, option: str) -> str:
        """The label of an option (the option itself if unknown)."""
        return dict(zip(self.options, self.labels)).get(option, option)


@dataclass
class _Class:
    opened: float  # clock time it was opened
    members: set[str] = field(default_factory=set)
    polls: dict[str, Poll] = field(default_factory=dict)  # every poll pushed, by id (votes stay with their poll)
    current: str | None = None  # id of the current poll
    votes: dict[str, dict[str, str]] = field(default_factory=dict)  # poll id -> member -> option
    answers: dict[str, str] = field(default_factory=dict)  # poll id -> the option that turned out right


class ClassRegistry:
    """Every open class of this server process: members (counted), polls, votes and revealed answers.

    Thread-safe. Counts only: member tokens are opaque and never shown. The clock is injectable for tests.
    """

    def __init__(self, ttl_s: float = CLASS_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._classes: dict[str, _Class] = {}

    # ---- classes ----
    def open_class(self) -> str:
        """Open a new class and return its code (CODE_LENGTH characters of CODE_ALPHABET)."""
        with self._lock:
            self._expire()
            while len(self._classes) >= MAX_CLASSES:
                del self._classes[min(self._classes, key=lambda c: self._classes[c].opened)]
            while True:
                code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
                if code not in self._classes:
                    break
            self._classes[code] = _Class(opened=self._clock())
            return code

    def is_open(self, code: str) -> bool:
        """Whether a class with this code is open (False for unknown codes and expired classes)."""
        with self._lock:
            return self._find(code) is not None

    def expires_in(self, code: str) -> float:
        """Seconds until the class expires (0 when it is not open)."""
        with self._lock:
            c = self._find(code)
            return 0.0 if c is None else max(0.0, c.opened + self.ttl_s - self._clock())

    def join(self, code: str, member: str) -> None:
        """Count a member in the class (joining twice counts once).

        Raises:
            ClassClosed: If the class is not open.
            ValueError: If the class already counts MAX_MEMBERS members.
        """
        with self._lock:
            c = self._get(code)
            if member not in c.members and len(c.members) >= MAX_MEMBERS:
                raise ValueError(f"This class already has {MAX_MEMBERS} members; ask the instructor for a new code.")
            c.members.add(member)

    def members(self, code: str) -> int:
        """How many members joined the class (0 when it is not open)."""
        with self._lock:
            c = self._find(code)
            return 0 if c is None else len(c.members)

    # ---- polls ----
    def push(self, code: str, poll: Poll) -> None:
        """Make `poll` the class's current poll. Pushing a poll with a known id again keeps its votes.

        Raises:
            ClassClosed: If the class is not open.
            ValueError: If the class already has MAX_POLLS other polls.
        """
        with self._lock:
            c = self._get(code)
            if poll.id not in c.polls and len(c.polls) >= MAX_POLLS:
                raise ValueError(f"This class already has {MAX_POLLS} polls; open a new class.")
            old = c.polls.get(poll.id)
            if old is not None and old.options != poll.options:  # the question changed: old answers do not apply
                c.votes.pop(poll.id, None)
                c.answers.pop(poll.id, None)
            c.polls[poll.id] = poll
            c.current = poll.id

    def current(self, code: str) -> Poll | None:
        """The class's current poll (None when none was pushed or the class is not open)."""
        with self._lock:
            c = self._find(code)
            return None if c is None or c.current is None else c.polls[c.current]

    def poll(self, code: str, poll_id: str) -> Poll | None:
        """A poll the class was asked (current or earlier), or None."""
        with self._lock:
            c = self._find(code)
            return None if c is None else c.polls.get(poll_id)

    def vote(self, code: str, poll_id: str, member: str, option: str) -> None:
        """Record a member's answer to a poll; a second vote replaces the first.

        Raises:
            ClassClosed: If the class is not open.
            ValueError: If the poll is unknown, the member has not joined, or the option is not one of the poll's.
        """
        with self._lock:
            c = self._get(code)
            p = c.polls.get(poll_id)
            if p is None:
                raise ValueError(f"This class has no poll {poll_id!r}.")
            if member not in c.members:
                raise ValueError("Join the class (open its link) before answering its polls.")
            if option not in p.options:
                raise ValueError(f"{option!r} is not an answer to this poll; choose one of: {', '.join(p.options)}.")
            c.votes.setdefault(poll_id, {})[member] = option

    def vote_of(self, code: str, poll_id: str, member: str) -> str | None:
        """A member's current answer to a poll, or None."""
        with self._lock:
            c = self._find(code)
            return None if c is None else c.votes.get(poll_id, {}).get(member)

    def tally(self, code: str, poll_id: str) -> dict[str, int]:
        """Votes per option, every option present, in option order (empty for an unknown poll or a closed class)."""
        with self._lock:
            c = self._find(code)
            p = None if c is None else c.polls.get(poll_id)
            if p is None:
                return {}
            counts = dict.fromkeys(p.options, 0)
            for option in c.votes.get(poll_id, {}).values():
                counts[option] += 1
            return counts

    # ---- the reveal ----
    def reveal(self, code: str, poll_id: str, option: str) -> None:
        """Record the poll's right answer (for the race: the lane that won), once it is known.

        Raises:
            ClassClosed: If the class is not open.
            ValueError: If the poll is unknown or the option is not one of its.
        """
        with self._lock:
            c = self._get(code)
            p = c.polls.get(poll_id)
            if p is None or option not in p.options:
                raise ValueError(f"Cannot reveal {option!r} for poll {poll_id!r}: not one of its options.")
            c.answers[poll_id] = option

    def answer(self, code: str, poll_id: str) -> str | None:
        """The revealed answer of a poll, or None while it is not known."""
        with self._lock:
            c = self._find(code)
            return None if c is None else c.answers.get(poll_id)

    # ---- internals (call with the lock held) ----
    def _expire(self) -> None:
        now = self._clock()
        for code in [k for k, c in self._classes.items() if now - c.opened >= self.ttl_s]:
            del self._classes[code]

    def _find(self, code: str) -> _Class | None:
        c = self._classes.get(normalise_code(code))
        if c is not None and self._clock() - c.opened >= self.ttl_s:
            del self._classes[normalise_code(code)]
            return None
        return c

    def _get(self, code: str) -> _Class:
        c = self._find(code)
        if c is None:
            raise ClassClosed(f"There is no open class {code!r}: it has expired or never existed. Ask the "
                              f"instructor for the current link.")
        return c


def normalise_code(code: str) -> str:
    """A class code as typed (any case, spaces and dashes around) in its canonical form."""
    return "".join(ch for ch in str(code).upper() if ch.isalnum())


def valid_code(code: str) -> bool:
    """Whether text is shaped like a class code (CODE_LENGTH characters of CODE_ALPHABET, any case)."""
    c = normalise_code(code)
    return len(c) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in c)


def new_member() -> str:
    """An opaque member token for one student's tab (random; says nothing about the student)."""
    return secrets.token_urlsafe(9)


# ---- the race's poll ----------------------------------------------------------------------------------------------
def race_poll_id(preset_key: str, seed: int) -> str:
    """The id of the race poll of a preset and seed (a new seed is a new race, so a new question)."""
    return f"race:{preset_key}:{int(seed)}"


def race_poll(preset: Preset, seed: int) -> Poll:
    """The class's prediction before a preset's race: which lane will reach the best validation accuracy?"""
    return Poll(race_poll_id(preset.key, seed),
                f"{preset.title} (seed {int(seed)}): which lane will reach the best validation accuracy?",
                tuple(preset.lane_keys), tuple(lane.label for lane in preset.lanes))


def reveal_line(tally: dict[str, int], answer: str, label: str) -> str:
    """The reveal: "Fine-tune all layers won: 14 of 27 predicted it." (counts from the tally)."""
    total = sum(tally.values())
    got = tally.get(answer, 0)
    if total == 0:
        return f"{label} won. Nobody in the class had predicted yet."
    return f"{label} won: {got} of {total} predicted it."


_REGISTRY: ClassRegistry | None = None
_REGISTRY_LOCK = threading.Lock()


def get_registry() -> ClassRegistry:
    """The process-wide class registry, created on first use."""
    global _REGISTRY
    with _REGISTRY_LOCK:
        if _REGISTRY is None:
            _REGISTRY = ClassRegistry()
        return _REGISTRY
