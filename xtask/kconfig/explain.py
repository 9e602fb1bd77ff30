#!/usr/bin/env python3
"""Explains why requested Kconfig settings did not take effect, as menuconfig's help does.

    python3 explain.py KCONFIG DOTCONFIG OUT SYMBOL=VALUE...

Run in the object folder with `srctree` set to the folder KCONFIG's `source` lines are relative
to (and, for the kernel, the variables kbuild exports that Kconfig files read: ARCH, SRCARCH,
CC, ...). Writes OUT with one line per request: empty when DOTCONFIG holds it, else why not:

    CONFIG_VIRTIO: requested y, got n; tristate without a prompt: only `select` sets it;
    Selected by: VIRTIO_PCI [=n] && PCI [=n] && VIRTIO_MENU [=n] || VIRTIO_MMIO [=n] && ...

or that no Kconfig defines the symbol. `cargo xtask kernel` and `cargo xtask busybox` run it in
the builder image (python3-kconfiglib) when a requested setting did not take effect.
"""

import io
import os
import sys
import tempfile

import kconfiglib


class Kconfig(kconfiglib.Kconfig):
    """Kconfiglib 14.1 predates Linux 5.13's `modules` keyword (formerly `option modules`): read
    it as the old spelling, which kconfiglib knows. Nothing else of Linux 6.1 needs help."""

    def _open(self, filename, mode):
        f = super()._open(filename, mode)
        if "r" not in mode:
            return f
        with f:
            return io.StringIO(f.read().replace("\n\tmodules\n", "\n\toption modules\n"))


def value_str(sc):
    """`NAME [=value]` for a symbol, as menuconfig shows it; constants as they are written."""
    if sc.is_constant:
        return kconfiglib.standard_sc_expr_str(sc)
    return "{} [={}]".format(sc.name, sc.str_value)


def expr(e):
    return kconfiglib.expr_str(e, value_str)


def terms(e):
    """A select/imply expression, one `SELECTOR && condition` term per selecting symbol."""
    return " || ".join(expr(t) for t in kconfiglib.split_expr(e, kconfiglib.OR))


def why(sym):
    """Type, prompt and its condition, dependencies, and who selects or implies the symbol."""
    kind = kconfiglib.TYPE_TO_STR[sym.orig_type]
    # A choice member depends on its choice: said once below, not as a condition.
    trivial = (sym.kconfig.y, sym.choice)
    prompts = [n.prompt for n in sym.nodes if n.prompt]
    parts = []
    if not prompts:
        parts.append("{} without a prompt: only `select` sets it".format(kind))
    for text, cond in prompts:
        # The prompt's condition includes the dependencies, which are listed once, below.
        condition = "" if cond in trivial or expr(cond) == expr(sym.direct_dep) else " if " + expr(cond)
        parts.append('{} "{}"{}'.format(kind, text, condition))
    if sym.choice:
        chosen = sym.choice.selection
        parts.append("in a choice, which has {} selected".format(chosen.name if chosen else "nothing"))
    if sym.direct_dep not in trivial:
        parts.append("Depends on: " + expr(sym.direct_dep))
    if sym.rev_dep is not sym.kconfig.n:
        parts.append("Selected by: " + terms(sym.rev_dep))
    if sym.weak_rev_dep is not sym.kconfig.n:
        parts.append("Implied by: " + terms(sym.weak_rev_dep))
    return "; ".join(parts)


def values(path):
    """Symbol -> value of a .config, `# CONFIG_X is not set` meaning n."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("CONFIG_"):
                name, _, value = line[len("CONFIG_"):].strip().partition("=")
                out[name] = value
            elif line.startswith("# CONFIG_") and line.rstrip().endswith(" is not set"):
                out[line[len("# CONFIG_"):].split()[0]] = "n"
    return out


def disagreements(kconf, dotconfig):
    """Symbols whose value kconfiglib computes differently from DOTCONFIG as conf wrote it: a
    sign that the environment differs from kbuild's, so the explanations may be off."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, ".config")
        kconf.write_config(path, header="")
        got = values(path)
    want = values(dotconfig)
    # Only what kconfiglib writes: busybox's old conf also writes invisible symbols. A symbol
    # left out of a .config is n.
    return sorted(s for s in got if want.get(s, "n") != got[s])


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    kconfig, dotconfig, out, requests = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    kconf = Kconfig(kconfig, warn=False)
    kconf.load_config(dotconfig)
    differ = disagreements(kconf, dotconfig)
    if differ:
        print("warning: kconfiglib reads {} differently from conf ({}): explanations may be off"
              .format(dotconfig, ", ".join(differ[:5])), file=sys.stderr)
    with open(out, "w") as f:
        for request in requests:
            print(explain(kconf, request), file=f)


def explain(kconf, request):
    name, _, wanted = request.partition("=")
    sym = kconf.syms.get(name)
    if sym is None or not sym.nodes:
        return "CONFIG_{}: requested {}, but no Kconfig defines it in this source tree".format(name, wanted)
    # The value as .config spells it; a symbol left out of it (unmet dependencies) is n.
    line = sym.config_string
    got = line.partition("=")[2].strip() if line.startswith("CONFIG_") else "n"
    return "" if got == wanted else "CONFIG_{}: requested {}, got {}; {}".format(name, wanted, got, why(sym))


if __name__ == "__main__":
    main()
