"""Generation: the native engine, sampling, stop strings, constrained decoding, and the
native / hf / openai backends behind one interface (`load`)."""

from instructgen.inference.backends import LLM, Choice, Completion, Usage, load
from instructgen.inference.chat import chat_loop, instruction_prompt
from instructgen.inference.engine import Engine
from instructgen.inference.sampling import SamplingParams, TokenLogprob

__all__ = [
    "LLM",
    "Choice",
    "Completion",
    "Engine",
    "SamplingParams",
    "TokenLogprob",
    "Usage",
    "chat_loop",
    "instruction_prompt",
    "load",
]
