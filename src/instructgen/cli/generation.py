"""`instructgen generate` and `instructgen chat`: one interface over native, hf and openai backends."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from instructgen.cli.common import add, add_model_flags, print_json
from instructgen.errors import ConfigError, DataError


def _sampling(args) -> dict:
    values = {
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "top_k": args.top_k,
        "min_p": args.min_p,
        "repetition_penalty": args.repetition_penalty,
        "seed": args.seed,
        "stop": args.stop or [],
    }
    return {k: v for k, v in values.items() if v is not None}


def _load(args):
    from instructgen.inference import load

    options = {"model": args.served_model} if getattr(args, "served_model", None) else {}
    if args.quantize not in (None, "none"):
        options["quantize"] = args.quantize
    return load(args.model, args.backend, api_key=args.api_key, **options)


def cmd_generate(args) -> None:
    from instructgen.inference import instruction_prompt

    sampling = _sampling(args)
    if args.n is not None:
        sampling["n"] = args.n
    if args.json_schema:
        path = Path(args.json_schema)
        if not path.is_file():
            raise DataError("JSON schema file not found", file=str(path))
        try:
            sampling["json_schema"] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", file=str(path), line=exc.lineno) from None
    prompt = instruction_prompt(args.instruction, args.input, system=args.system, chat=not args.raw)
    with _load(args) as llm:
        if args.stream:
            if args.json:
                raise ConfigError("--stream prints text; drop --json", field="stream")
            for delta in llm.stream(prompt, **sampling):
                sys.stdout.write(delta)
                sys.stdout.flush()
            sys.stdout.write("\n")
            return
        completion = llm.generate(prompt, **sampling)
    if args.json:
        print_json(completion.to_dict())
    else:
        for choice in completion.choices:
            print(choice.text)


def cmd_chat(args) -> None:
    from instructgen.inference import chat_loop

    with _load(args) as llm:
        chat_loop(llm, system=args.system, **_sampling(args))


def _add_generation_flags(p) -> None:
    add_model_flags(p)
    p.add_argument("--system", metavar="TEXT", help="system prompt")
    p.add_argument("--max-tokens", type=int, metavar="N")
    p.add_argument("--temperature", type=float, metavar="T", help="0 = greedy")
    p.add_argument("--top-p", type=float, metavar="P")
    p.add_argument("--top-k", type=int, metavar="K")
    p.add_argument("--min-p", type=float, metavar="P")
    p.add_argument("--repetition-penalty", type=float, metavar="R")
    p.add_argument("--seed", type=int, metavar="S", help="same seed, same text")
    p.add_argument(
        "--stop", nargs="+", metavar="S", help="stop strings (not included in the output)"
    )
    p.add_argument(
        "--quantize",
        choices=["none", "int8"],
        help="int8: weight-only int8 linear layers (per-channel scales), faster decoding on the "
        "native backend (default: none)",
    )


def register(verbs) -> None:
    p = add(
        verbs,
        "generate",
        cmd_generate,
        "generate from a model directory, a Hugging Face model or an OpenAI-compatible URL",
        'instructgen generate --model runs/quickstart/model "请用中文写一首关于春天的诗。"\n'
        '  instructgen generate --model runs/quickstart/model --quantize int8 "Write a haiku."\n'
        '  instructgen generate --model http://127.0.0.1:8000/v1 "Summarise:" --input "$(cat a.txt)" --stream',
    )
    p.add_argument("instruction", help="the instruction")
    p.add_argument(
        "--input",
        metavar="TEXT",
        help="input the instruction applies to (joined after a blank line)",
    )
    _add_generation_flags(p)
    p.add_argument("--n", type=int, metavar="N", help="number of answers")
    p.add_argument(
        "--raw",
        action="store_true",
        help="send instruction + input as plain text (no chat template), as brief 5.1 does",
    )
    p.add_argument("--json-schema", metavar="F", help="constrain the answer to this JSON schema")
    p.add_argument("--stream", action="store_true", help="print the answer as it is generated")
    p.add_argument(
        "--json", action="store_true", help="print the whole completion as JSON (choices, usage)"
    )

    p = add(
        verbs,
        "chat",
        cmd_chat,
        "chat in the terminal (streaming; /reset, /system TEXT, /save FILE, /exit)",
        "instructgen chat --model runs/quickstart/model --temperature 0.7",
    )
    _add_generation_flags(p)
