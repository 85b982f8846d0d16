"""Prompt text of the value functions and of reflection, in our own words after ExACT's structure.

Every prompt names its answer format in a fixed marker (EVALUATION:, STATUS CODE:, and the
debaters' and reflection's role lines), so replies parse reliably and scripted test models can tell
the calls apart.
"""

from __future__ import annotations

import re

# -- single-agent debate (ExACT OSWorld value function) -----------------------------------------------
SINGLE_SYSTEM = (
    "You are an expert evaluator of an agent that carries out tasks on a desktop computer with its "
    "mouse and keyboard. You see the task, the agent's recent observations and actions, and the "
    "current state of the screen, and you judge how close the agent is to completing the task."
)
SINGLE_ASK = """\
Judge the current state. First give your reasons:
1. Was the agent's last action executed correctly, and did it have the intended effect?
2. What progress has been made toward the task so far?
3. Are there reasons for the agent to try other actions instead of continuing from here?
Then end with one line "EVALUATION: X", where X is one letter:
A: the task is complete; nothing is left to do.
B: the task is very close to complete.
C: some progress has been made toward the task.
D: little or no progress, or a mistake that can still be undone.
E: the task has failed or cannot be completed from this state."""
SINGLE_SCORES = {"A": 1.0, "B": 0.5, "C": 0.2, "D": -0.2, "E": -1.0}
_EVALUATION = re.compile(r"EVALUATION\W{0,6}([A-E])\b")

# -- multi-agent debate (ExACT VWA value function) --------------------------------------------------------
DEBATER_SYSTEM = (
    "You review the work of an agent that carries out tasks on a desktop computer. You see the task, "
    "the agent's recent observations and actions, and the current state of the screen."
)
SUPPORT_ASK = (
    "ROLE: SUPPORTING DEBATER. Make the strongest case that the agent has completed the task or is "
    "clearly on track to complete it from this state. Use at most 100 words."
)
OPPOSE_ASK = (
    "ROLE: OPPOSING DEBATER. Make the strongest case that the agent has not completed the task and "
    "is not on track to complete it from this state. Use at most 100 words."
)
JUDGE_SYSTEM = (
    "You are the judge of a debate about the progress of an agent that carries out tasks on a desktop "
    "computer. You see the task, the agent's recent observations and actions, the current state of the "
    "screen, and two opposing opinions about it."
)
JUDGE_ASK = """\
Weigh both opinions against what you see, then decide the status of the task. End with one line \
"STATUS CODE: X", where X is one letter:
A: the task is completed successfully.
B: the agent is on track to complete the task.
C: it is uncertain whether the agent is on track.
D: the agent is not on track, but can still recover.
E: the task has failed or cannot be completed from this state."""
MULTI_SCORES = {"A": 1.0, "B": 0.7, "C": 0.5, "D": -0.2, "E": -1.0}
_STATUS = re.compile(r"STATUS\s*CODE\W{0,6}([A-E])\b")


def parse_evaluation(text: str) -> str | None:
    """The letter of the last 'EVALUATION: X' line, or None."""
    found = _EVALUATION.findall(text or "")
    return found[-1] if found else None


def parse_status(text: str) -> str | None:
    """The letter of the last 'STATUS CODE: X', or None."""
    found = _STATUS.findall(text or "")
    return found[-1] if found else None


def opinions(first: tuple[str, str], second: tuple[str, str]) -> str:
    return (f"OPINION 1 ({first[0]}):\n{first[1].strip()}\n\n"
            f"OPINION 2 ({second[0]}):\n{second[1].strip()}")


# -- contrastive reflection ------------------------------------------------------------------------------------
REFLECT_SYSTEM = (
    "You help an agent that carries out tasks on a desktop computer learn from its own trajectories, "
    "so that it acts better the next time it meets a similar situation."
)
EXPECT_ASK = (
    "ROLE: REFLECTION (EXPECTATION). Above are the task, the state of the screen, and the action the "
    "agent took in that state. What did you expect to happen after this action? Use at most 100 words."
)
REFLECT_ASK = (
    "ROLE: REFLECTION (LESSON). Above is the state of the screen after the action. The agent {outcome}. "
    "Is this what you expected? Reflect on the difference between what you expected and what happened, "
    "and say what the agent should do differently in a similar situation. Use at most 100 words."
)
REFLECTIONS_HEADER = (
    "REFLECTIONS: lessons from earlier tasks in similar situations (use them if they apply):"
)
