"""``python tools/toy_report.py RECIPE [overrides]``: the Figure-1 toy runs measured and drawn
(:mod:`mdreg.reports.toy`)."""
from __future__ import annotations

import argparse

from mdreg.commands.entry import add_plugin_argument, import_plugins_of
from mdreg.reports import toy
from mdreg.reports.toy import format_comparisons, format_table, report


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tools/toy_report.py", description=toy.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", help="recipes/toy_swissroll.py or recipes/toy_rose.py")
    p.add_argument("overrides", nargs="*", help="the overrides the runs were launched with (e.g. train.seed=0,1,2)")
    p.add_argument("--baseline", metavar="ELEMENT",
                   help="compare every element's last stage with this one's, paired by seed (default: the "
                        "recipe's report.baseline)")
    p.add_argument("--verbose", "-v", action="store_true")
    add_plugin_argument(p)
    args = p.parse_args(argv)
    import_plugins_of(args)
    table, comparisons = report(args.recipe, args.overrides, args.baseline)
    print(format_table(table))
    if comparisons:
        print(f"\nagainst {comparisons[0]['baseline']}, paired by seed:")
        print(format_comparisons(comparisons))
    return 0
