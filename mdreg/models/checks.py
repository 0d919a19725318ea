"""Constructor-argument checks shared by the backbones: one ValueError naming the argument.

The backbones call these first thing in ``__init__``, so a bad size fails before any tensor
is allocated — also when the planner builds the model on the ``meta`` device — with a message
that names the argument and suggests values that work (instead of timm's bare
``AssertionError`` deep inside ``Attention``). ``instantiate`` turns the ValueError into a
ConfigError naming the config key.
"""
from __future__ import annotations


def divisors(n: int) -> list[int]:
    """The positive divisors of ``n``, ascending."""
    return [d for d in range(1, n + 1) if n % d == 0]


def nearest_divisors(n: int, near: int, count: int = 6) -> list[int]:
    """The ``count`` divisors of ``n`` closest to ``near``, ascending."""
    return sorted(sorted(divisors(n), key=lambda d: (abs(d - near), d))[:count])


def check_positive(**sizes: int) -> None:
    """Every ``name=value`` must be a positive integer (bools are refused: they are not sizes)."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}={value!r} must be a positive integer")


def check_ratio(name: str, value: float) -> None:
    """A positive real factor such as ``mlp_ratio``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name}={value!r} must be a positive number, e.g. {name}=4.0")


def check_divides(part_name: str, part: int, whole_name: str, whole: int) -> None:
    """``part`` must divide ``whole``, e.g. ``num_heads`` the width, ``patch_size`` the image side."""
    if whole % part:
        shown = nearest_divisors(whole, part)
        choices = ", ".join(map(str, shown)) + (", ..." if len(shown) < len(divisors(whole)) else "")
        raise ValueError(f"{part_name}={part} does not divide {whole_name}={whole}; choose {part_name} among "
                         f"{choices} (or change {whole_name})")


def check_multiple_of(name: str, value: int, factor: int, why: str) -> None:
    """``value`` must be a multiple of ``factor`` (e.g. sin-cos positions need the width divisible by 4)."""
    if value % factor:
        lower, upper = value - value % factor, value - value % factor + factor
        raise ValueError(f"{name}={value} must be a multiple of {factor} ({why}); e.g. "
                         f"{name}={lower or upper} or {upper}")


def check_transformer(img_size: int, patch_size: int, in_chans: int, width_name: str, width: int, depth: int,
                      num_heads: int, mlp_ratio: float) -> None:
    """The checks every patch transformer here shares: positive sizes, patches that tile the
    image, heads that split the width."""
    check_positive(img_size=img_size, patch_size=patch_size, in_chans=in_chans, **{width_name: width}, depth=depth,
                   num_heads=num_heads)
    check_ratio("mlp_ratio", mlp_ratio)
    check_divides("patch_size", patch_size, "img_size", img_size)
    check_divides("num_heads", num_heads, width_name, width)


def check_num_classes(num_classes: int) -> None:
    """0 (unconditional) or a positive class count."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes={num_classes!r} must be 0 (unconditional) or a positive number of classes")
