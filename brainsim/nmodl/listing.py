"""`brainsim mechanisms DIR`: what each .mod file of a folder declares, or why it cannot be translated."""

from pathlib import Path

from ..errors import BrainsimError, MechanismError


def describe(folder):
    """[(path, Mechanism or MechanismError)] for every *.mod file of folder, sorted by name."""
    from . import symbolic  # sympy and NMODL load where they are used (see cache.translate)

    folder = Path(folder)
    if not folder.is_dir():
        raise MechanismError("not a folder of .mod files", str(folder))
    out = []
    for path in sorted(folder.glob("*.mod")):
        try:
            out.append((path, symbolic.read(str(path), path.read_text())))
        except BrainsimError as e:
            out.append((path, e))
        except (OSError, UnicodeDecodeError) as e:
            out.append((path, MechanismError(f"cannot read the .mod file: {e}", str(path))))
    return out


def _number(x):
    return f"{x:.10g}"


def listing(folder):
    """(text listing the folder's mechanisms, number of files that failed)."""
    lines, failed = [], 0
    entries = describe(folder)
    for path, m in entries:
        if isinstance(m, BrainsimError):
            failed += 1
            lines += [f"{path.name}: error: {m}", ""]
            continue
        params = ", ".join(f"{p} = {_number(d)} {u}" for p, d, u in m.params) or "-"
        ions = "; ".join(
            f"{ion}: " + " ".join([f"READ {', '.join(r)}"] * bool(r) + [f"WRITE {', '.join(w)}"] * bool(w))
            for ion, r, w in m.useion
        )
        lines += [
            f"{path.name}: {m.name} ({m.kind})",
            f"  states: {', '.join(f'{s} ({u})' for s, u in m.states) or '-'}",
            f"  parameters: {params}",
            f"  ions: {ions or '-'}",
            f"  currents: {', '.join(m.currents) or '-'}",
            "",
        ]
    if not entries:
        lines.append(f"{folder}: no .mod files")
    return "\n".join(lines).rstrip() + "\n", failed
