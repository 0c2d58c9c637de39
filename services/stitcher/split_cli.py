"""``journeys split`` and ``journeys why``: an admin splits a wrongly merged customer (or undoes a split, or
lets a split pair merge again) and asks why an identifier is part of a customer. Output is JSON with
identifier types and masks only; the split record goes to identity-merges
(services/stitcher/split_service.py). Needs the same JOURNEYS_HMAC_SECRET (and previous secrets) as the
stitcher, REDIS_URL and Kafka."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson

from services.common.errors import UserError
from services.common.settings import env_help
from services.stitcher.core.identifiers import IDENTIFIER_TYPES
from services.stitcher.settings import StitcherSettings


def _identifier_options(parser: argparse.ArgumentParser) -> None:
    for t in IDENTIFIER_TYPES:
        parser.add_argument(
            f"--{t.replace('_', '-')}", dest=t, action="append", metavar="VALUE", help=f"a {t} (repeatable)"
        )


def register(sub: argparse._SubParsersAction[Any]) -> None:
    split = sub.add_parser(
        "split",
        help="split a wrongly merged customer (admin), undo a split, or allow a split pair to merge",
        description="Separate identifiers from a customer: the identity graph is rebuilt from its recorded "
        "links without them, touchpoints follow their event's strongest identifier, the two are "
        "kept from merging again and a split record goes to identity-merges. Give the "
        "identifiers (--email … --cookie-id …) or the merge to undo (--merge EVENT_ID LOSER); "
        "--undo SPLIT_ID merges them back; --allow OTHER lets the two merge again. Safe to "
        "repeat.",
        epilog=env_help(StitcherSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    split.add_argument("customer", nargs="?", metavar="CUSTOMER_ID", help="the customer to split (c_…)")
    _identifier_options(split)
    split.add_argument("--merge", nargs=2, metavar=("EVENT_ID", "LOSER"), help="undo this merge record")
    split.add_argument("--undo", metavar="SPLIT_ID", help="merge a split's two customers back")
    split.add_argument("--allow", metavar="OTHER", help="let CUSTOMER_ID and OTHER merge again")
    split.add_argument("--by", default="", help="who asks, for the record (default: the OS user)")
    split.set_defaults(func=run_split)
    why = sub.add_parser(
        "why",
        help="why identifiers are part of a customer: the recorded links, masked",
        description="The links (which event, when, which rule) that make the identifier part of the "
        "customer, or every link of the customer when no identifier is given.",
        epilog=env_help(StitcherSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    why.add_argument("customer", metavar="CUSTOMER_ID", help="the customer (c_…)")
    _identifier_options(why)
    why.set_defaults(func=run_why)


def _pairs(args: argparse.Namespace) -> list[tuple[str, str]]:
    return [(t, v) for t in IDENTIFIER_TYPES for v in (getattr(args, t, None) or [])]


async def _with_service(work: Any) -> Any:
    from services.common.redis_conn import connect
    from services.stitcher.adapters.split_store import SplitBusy
    from services.stitcher.cli import load_settings
    from services.stitcher.core.split import SplitRefused
    from services.stitcher.split_service import MergePublisher, PublishFailed, SplitService

    settings = load_settings()
    client = connect(settings.redis_url)
    publisher = MergePublisher(settings)
    try:
        return await work(SplitService(settings, client, settings.max_touchpoints, publisher))
    except SplitRefused as exc:
        raise UserError(str(exc)) from None
    except (SplitBusy, PublishFailed) as exc:
        raise UserError(f"{exc} (the same command again finishes it)") from None
    finally:
        publisher.close()
        await client.aclose()


def run_split(args: argparse.Namespace) -> int:
    pairs = _pairs(args)
    if args.undo:
        out = asyncio.run(_with_service(lambda s: s.undo(args.undo, by=args.by)))
    elif not args.customer:
        raise UserError("name the customer to split (or --undo SPLIT_ID)")
    elif args.allow:
        out = asyncio.run(_with_service(lambda s: s.allow(args.customer, args.allow)))
        out = {"customer_id": args.customer, "with": args.allow, "allowed": True, "was_blocked": out > 0}
    elif bool(pairs) == bool(args.merge):
        raise UserError("give the identifiers to separate (--email …) or --merge EVENT_ID LOSER, not both")
    else:
        merge = tuple(args.merge) if args.merge else None
        out = asyncio.run(
            _with_service(lambda s: s.split(args.customer, identifiers=pairs, merge=merge, by=args.by))
        )
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    return 0


def run_why(args: argparse.Namespace) -> int:
    pairs = _pairs(args)
    if len(pairs) > 1:
        raise UserError("ask about one identifier at a time")
    id_type, raw = pairs[0] if pairs else (None, None)
    out = asyncio.run(_with_service(lambda s: s.why(args.customer, id_type, raw)))
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
    return 0
