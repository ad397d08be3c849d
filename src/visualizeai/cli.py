"""Command line: ``visualizeai models | serve | analyze | fill-mask | generate | export | corpus``.

Parsing happens in ``main``, never at import."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from visualizeai.config import Settings
from visualizeai.errors import InputError, VisualizeAIError
from visualizeai.extras import check_installed


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", type=Path, help="JSON file with extra catalog entries")
    parser.add_argument(
        "--allowed-root",
        action="append",
        type=Path,
        default=None,
        help="directory under which local model folders may be loaded (repeatable)",
    )
    parser.add_argument("--device", default=None, help="auto, cpu or cuda[:N] (default auto)")
    parser.add_argument("--dtype", default=None, choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--offline", action="store_true", default=None, help="never contact the hub")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="cap on tokens analysed at once; a model's own context window is capped at this (default 32768)",
    )
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        default=None,
        help="load checkpoints that only have pickle (.bin) weights",
    )


def _settings(args: argparse.Namespace, **extra: object) -> Settings:
    roots = tuple(p.resolve() for p in args.allowed_root) if args.allowed_root else None
    model = getattr(args, "model", None)
    if model and roots is None and Path(model).expanduser().is_dir():
        # a directory named on the command line is allowed by the person who typed it
        roots = (*Settings().allowed_roots, Path(model).expanduser().resolve())
    return Settings.from_env(
        catalog_file=args.catalog,
        allowed_roots=roots,
        device=args.device,
        dtype=args.dtype,
        offline=args.offline,
        allow_pickle=args.allow_pickle,
        max_tokens=args.max_tokens,
        **extra,
    )


def cmd_models(args: argparse.Namespace) -> int:
    from visualizeai.service import Service

    service = Service(_settings(args))
    statuses = service.models()
    modes = {}
    if args.check:  # load what is here (never downloads) and say how its attention is read
        for status in statuses:
            if status.availability in ("embedded", "local", "cached", "loaded"):
                try:
                    loaded = service.model(status.spec.id)
                except VisualizeAIError as exc:
                    modes[status.spec.id] = (f"error: {exc}", None)
                    continue
                check = loaded.attention_check
                modes[status.spec.id] = (loaded.attention_mode, check.reason if check else None)
    rows = [
        (s.spec.id, s.spec.kind or "?", s.availability, *modes.get(s.spec.id, ("-", None)), s.reason or "")
        for s in statuses
    ]
    if args.json:
        names = ("id", "kind", "availability", "attention", "attention_reason", "reason")
        print(json.dumps([dict(zip(names, r, strict=True)) for r in rows]))
        return 0
    print(f"token cap: {service.settings.max_tokens:,} (--max-tokens, VISUALIZEAI_MAX_TOKENS)")
    if not args.check:
        print("attention mode: run with --check to load the models that are here and self-check them")
    width = max(len(r[0]) for r in rows)
    for model_id, kind, avail, mode, why, reason in rows:
        detail = "; ".join(x for x in (reason, why) if x)
        print(f"{model_id:<{width}}  {kind:<9}  {avail:<11}  {mode:<8}  {detail}".rstrip())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from visualizeai.web.server import serve

    settings = _settings(
        args, host=args.host, port=args.port, extra_models=(args.model,) if args.model else None
    )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving on {args.host}: anyone who can reach this machine can use the app "
            "and make it load models.",
            file=sys.stderr,
        )
    serve(settings)
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from visualizeai import export
    from visualizeai.service import Service

    service = Service(_settings(args))
    result = service.analyze(args.text, args.model).result
    if args.out:
        service.write(result, args.out)
        print(f"wrote {args.out} ({result.layers} layers × {result.heads} heads × {result.n} tokens)")
    else:
        print(json.dumps(export.summary(result), ensure_ascii=False, indent=1))
    if result.dropped_tokens:
        print(
            f"note: {result.dropped_tokens} tokens beyond the limit of {result.max_length} were dropped "
            f"(the model's context, capped at {service.settings.max_tokens:,} by --max-tokens)",
            file=sys.stderr,
        )
    return 0


def cmd_fill_mask(args: argparse.Namespace) -> int:
    from visualizeai.service import Service

    result = Service(_settings(args)).fill_mask(args.text, args.model, args.top_k).result
    out = [[{"token": c.token, "score": c.score} for c in p.candidates] for p in result.predictions]
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from visualizeai.service import Service

    service = Service(_settings(args))
    greedy = args.seed is None
    generation = service.generate(args.text, args.model, args.max_new_tokens, greedy=greedy, seed=args.seed)
    steps = [
        {
            "step": s.index,
            "token_id": s.token_id,
            "token": s.token,
            "text": s.text,
            "attention_shape": list(s.attention.shape),
        }
        for s in generation.steps
    ]
    print(
        json.dumps(
            {
                "model": generation.model_id,
                "prompt": generation.prompt,
                "mode": "greedy" if greedy else "sample",
                "seed": generation.seed,
                "generated_text": "".join(s["text"] for s in steps),
                "finish_reason": generation.finish_reason,
                "tokens": steps,
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from visualizeai import export

    fmt = args.format or args.out.suffix.lstrip(".").lower()
    if fmt not in export.FORMATS:
        formats = ", ".join(export.FORMATS)
        raise InputError(f"Cannot tell the format from {args.out.name!r}: add --format ({formats}).")
    from visualizeai.service import Service

    service = Service(_settings(args))
    if args.input is not None:
        if args.text:
            raise InputError("Give either TEXT or --input, not both.")
        result = export.read(args.input)
    elif args.text:
        result = service.analyze(args.text, args.model).result
    else:
        raise InputError("Nothing to export: give a TEXT to analyse, or --input with a saved .npz or .json.")
    layers = export.parse_layers(args.layers, result.layers)
    data = service.export_bytes(
        result, fmt, layer=args.layer, head=args.head, layers=layers, scale=args.scale
    )
    args.out.write_bytes(data)
    what = f"layer {args.layer}, head {args.head}" if fmt in ("png", "svg") else f"{result.layers} layers"
    if fmt == "html":
        what = f"layers {', '.join(map(str, layers))}" if layers else "all layers"
    print(f"wrote {args.out} ({fmt}, {len(data):,} bytes; {result.n} tokens, {what})")
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    for module in ("pyarrow", "ray"):  # the corpus extra, before any model is resolved or read
        check_installed(module)
    from visualizeai.corpus.runner import CorpusOptions, run_corpus

    options = CorpusOptions(
        input=args.input,
        out=args.out,
        model=args.model,
        text_field=args.text_field,
        split=args.split,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        block=args.block,
        num_workers=args.num_workers,
        ray_address=args.ray_address,
        num_cpus=args.num_cpus,
        long_texts=args.long_texts,
        window_overlap=args.window_overlap,
        qk_sample=args.qk_sample,
        progress=not args.no_progress,
    )
    try:
        r = run_corpus(options, _settings(args))
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished shards are saved in {args.out}; run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    handled = f"{r.truncated_texts} truncated" if args.long_texts == "truncate" else f"{r.windows} windows"
    print(
        f"{r.texts} texts ({r.skipped} empty skipped, {handled}) × {r.layers} layers × "
        f"{r.heads} heads; {r.shards_run} of {r.shards} shards computed now in {r.total_s:.1f} s"
    )
    if len(r.nodes) > 1:
        print(f"ray nodes: {len(r.nodes)} ({', '.join(f'{n[:8]}…: {c} texts' for n, c in r.nodes.items())})")
    print(f"per-text rows: {r.out / 'texts'}/\nsummary:       {r.summary_path}")
    print(f"extremes:      {r.extremes_path}")
    if (r.out / "qk_map.parquet").exists():
        print(f"query-key map: {r.out / 'qk_map.parquet'}")
    print("view it: visualizeai serve, open /corpus and load the summary and extremes files", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="visualizeai", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the catalog with availability")
    _common(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--check",
        action="store_true",
        help="load each model available here and report its attention mode (captured or dense)",
    )
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("serve", help="serve the web app")
    _common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--model", help="extra model (hub id or local directory) to add to the catalog")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("analyze", help="analyse a text and print or save its attention")
    _common(p)
    p.add_argument("--model", help="catalog id, hub id or local model directory (default: embedded)")
    p.add_argument("--out", type=Path, help="write .npz or .json")
    p.add_argument("text")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("fill-mask", help="top-k predictions at each [MASK] of a masked language model")
    _common(p)
    p.add_argument("--model", help="catalog id, hub id or local model directory (default: embedded)")
    p.add_argument("--top-k", type=int, default=10, help="predictions per mask (default 10)")
    p.add_argument("text", help="text with one or more [MASK] (or the model's own mask token)")
    p.set_defaults(func=cmd_fill_mask)

    p = sub.add_parser("generate", help="continue a text with a causal language model, token by token")
    _common(p)
    p.add_argument("--model", help="catalog id, hub id or local model directory of a causal LM")
    p.add_argument("--max-new-tokens", type=int, default=20, help="most tokens to generate (default 20)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--greedy", action="store_true", help="always pick the most likely token (default)")
    how.add_argument("--seed", type=int, help="sample (from the 50 most likely tokens) with this seed")
    p.add_argument("text", help="the prompt")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "export", help="save an analysis as a figure (png, svg), data (npz, json) or an offline page (html)"
    )
    _common(p)
    p.add_argument(
        "--format",
        choices=("png", "svg", "html", "json", "npz"),
        help="file format (default: from the suffix of --out)",
    )
    p.add_argument("--out", type=Path, required=True, help="file to write")
    p.add_argument("--model", help="catalog id, hub id or local model directory (default: embedded)")
    p.add_argument("--input", type=Path, help="a saved analysis (.npz or .json) to export instead of TEXT")
    p.add_argument("--layer", type=int, default=0, help="layer of the png/svg figure (default 0)")
    p.add_argument("--head", type=int, default=0, help="head of the png/svg figure (default 0)")
    p.add_argument(
        "--scale",
        choices=("linear", "sqrt", "log"),
        default="linear",
        help="colour scale of figures and the html page's initial view (default linear)",
    )
    p.add_argument("--layers", help="layers in the html page, e.g. 0,1,5 or 0-3 (default: all)")
    p.add_argument("text", nargs="?", help="text to analyse")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("corpus", help="head statistics of every text of a corpus, on Ray (resumable)")
    _common(p)
    p.add_argument("--model", help="catalog id, hub id or local model directory (default: embedded)")
    p.add_argument(
        "--input",
        required=True,
        help=".txt (one text per line), .jsonl or .parquet; a directory of them, a quoted glob such as "
        "'wiki/*.parquet', or a Hugging Face datasets folder (data/train-00000-of-00002.parquet)",
    )
    p.add_argument("--out", type=Path, required=True, help="output directory (run again to resume)")
    p.add_argument("--text-field", default="text", help="field of .jsonl / column of .parquet (default text)")
    p.add_argument("--split", default="train", help="split of a datasets folder (default train)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32)")
    p.add_argument("--shard-size", type=int, default=2048, help="texts per output shard (default 2048)")
    p.add_argument("--block", type=int, help="texts per Ray task (default 8 batches)")
    p.add_argument(
        "--long-texts",
        choices=("truncate", "window"),
        default="truncate",
        help="a text beyond the model's context: cut at the end, or split into windows (default truncate)",
    )
    p.add_argument(
        "--window-overlap", type=int, default=0, help="tokens consecutive windows share (default 0)"
    )
    p.add_argument(
        "--qk-sample",
        type=int,
        default=256,
        help="tokens sampled over the corpus for every head's query-key map (default 256; 0 for none)",
    )
    p.add_argument("--num-workers", type=int, help="model replicas (default: one per GPU, else one)")
    p.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    p.add_argument(
        "--ray-address",
        help="connect to this Ray cluster (HOST:PORT) instead of starting a local one; with token "
        "authentication, set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_corpus)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VisualizeAIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # bad catalog file and similar configuration problems
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional dependency imported without extras.require
        from visualizeai.extras import EXTRAS

        if exc.name not in EXTRAS:
            raise
        extra = EXTRAS[exc.name]
        print(
            f"error: {exc.name} is not installed; install it with: pip install 'visualizeai[{extra}]'",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
