"""``tcvom weights``: register downloaded network weights and list them.

``tcvom weights add FILE`` checks that the file loads into a tcvom network (any matting base
with or without the TAM, or STM), copies it atomically into the user data folder and
records it under its kind (``fba_tam``, ``dim``...: ``--base`` picks among them);
``tcvom weights list`` shows what is registered and where tcvom looks for weights;
``tcvom weights remove NAME`` deletes a stored file and its record.
"""

from __future__ import annotations

import argparse
import json

NAME = "weights"
HELP = "register downloaded network weights (add), remove them (remove) and list them (list)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add", help="check a weight file and copy it into the user data folder")
    add.add_argument("file", help="the downloaded .pth file")
    add.add_argument("--name", help="file name to store it under (default: the file's own name)")
    add.add_argument("--overwrite", action="store_true", help="replace a different file of the same name")
    remove = actions.add_parser("remove", help="delete stored weights and their record from the user data folder")
    remove.add_argument("name", help="the file name 'tcvom weights list' shows")
    listing = actions.add_parser("list", help="list the registered weights and the search order")
    listing.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    from tcvom.weights import checkpoints  # torch is imported only when the job runs
    from tcvom.weights import registry as weights

    action = getattr(args, "action", None)
    if action == "add":
        record = weights.add_weights(args.file, name=args.name, overwrite=args.overwrite)
        print(f"added {checkpoints.kind_name(record['kind'])} weights: {record['path']}")
        print(f"  sha256 {record['sha256']}, {record['tensors']} tensors, {record['parameters']:,} values")
        return 0
    if action == "remove":
        record = weights.remove_weights(args.name)
        what = f"{checkpoints.kind_name(record['kind'])} weights" if record["kind"] else "the weight file"
        print(f"removed {what}: {record['path']}" + ("" if record["deleted"] else " (its file was already gone; "
                                                      "the record is removed)"))
        return 0
    if action == "list":
        records = weights.list_weights()
        if args.json:
            print(json.dumps({"folder": str(weights.weights_dir()), "weights": records,
                              "search_order": weights.search_order()}, indent=2))
            return 0
        print(f"weights folder: {weights.weights_dir()}")
        if not records:
            print("  (none registered: download a checkpoint and run 'tcvom weights add FILE')")
        for r in records:
            state = "" if r["present"] else "  (file missing)"
            print(f"  {r['kind']:<9} {r['file']}  sha256 {r['sha256'][:12]}  added {r['added']}{state}")
        print("search order: " + "; ".join(weights.search_order()))
        return 0
    print("usage: tcvom weights {add FILE | remove NAME | list}")
    return 2
