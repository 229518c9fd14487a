"""The course's diagrams as Graphviz DOT: traditional ML versus transfer learning, and the matrix's decision tree.

Pages draw them with st.graphviz_chart; the tree's nodes and edges are data in tl_core.teaching.matrix.
"""

from __future__ import annotations

from tl_core.teaching import matrix
from ui.charts import theme


def traditional_vs_transfer_dot() -> str:
    """The course's side-by-side diagram: traditional ML (one model per dataset) versus transfer learning.

    Returns:
        A Graphviz DOT string.
    """
    data = f'shape=cylinder, style=filled, fillcolor="{theme.LIGHT}", color="{theme.BLACK}"'
    model = f'shape=box, style="rounded,filled", fillcolor="{theme.SKY}", color="{theme.BLUE}"'
    model2 = f'shape=box, style="rounded,filled", fillcolor="{theme.ORANGE}", color="{theme.VERMILLION}"'
    know = f'shape=note, style=filled, fillcolor="{theme.YELLOW}", color="{theme.BLACK}"'
    return "\n".join([
        "digraph tl {",
        "  rankdir=LR; nodesep=0.3; ranksep=0.5; newrank=true;",
        '  node [fontname="Helvetica", fontsize=12]; edge [color="#444444"];',
        '  subgraph cluster_trad { label="Traditional ML: every dataset starts from zero"; fontname="Helvetica"; '
        f'fontsize=13; color="{theme.GREY}";',
        f'    d1 [label="Dataset 1", {data}]; m1 [label="Model 1", {model}];',
        f'    d2 [label="Dataset 2", {data}]; m2 [label="Model 2", {model2}];',
        "    d1 -> m1; d2 -> m2;",
        "  }",
        '  subgraph cluster_tl { label="Transfer learning: model 1\'s knowledge helps model 2"; '
        f'fontname="Helvetica"; fontsize=13; color="{theme.BLUE}";',
        f'    t1 [label="Dataset 1", {data}]; n1 [label="Model 1", {model}];',
        f'    k [label="Knowledge\\n(architecture + weights)", {know}];',
        f'    t2 [label="Dataset 2\\n(often small)", {data}]; n2 [label="Model 2", {model2}];',
        f'    t1 -> n1; n1 -> k [color="{theme.BLUE}", penwidth=2]; k -> n2 [color="{theme.BLUE}", penwidth=2];'
        " t2 -> n2;",
        "  }",
        "}",
    ])


def tree_dot(setting: matrix.Setting | None = None, *, highlight: str = theme.BLUE, dim: str = "#9A9A9A") -> str:
    """The course's decision tree in Graphviz DOT, with the path to `setting` drawn bold.

    Args:
        setting: The setting to highlight, or None for the plain tree.
        highlight: Colour of the chosen path and leaf.
        dim: Colour of everything else.

    Returns:
        A DOT source string for st.graphviz_chart.
    """
    chosen = set(matrix.decision_path(setting)) if setting is not None else set()
    on_path = {n for edge in chosen for n in edge}
    lines = ['digraph matrix {', '  rankdir=TB; nodesep=0.25; ranksep=0.45;',
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=12, margin="0.15,0.08"];',
             '  edge [fontname="Helvetica", fontsize=11];']
    for node, label in matrix.TREE_NODES.items():
        leaf = matrix.is_leaf(node)
        label_dot = label.replace("\n", "\\n")
        if node in on_path and leaf:
            style = f'fillcolor="{highlight}", fontcolor="white", color="{highlight}", penwidth=2'
        elif node in on_path:
            style = f'fillcolor="#DCEBF5", color="{highlight}", penwidth=2'
        else:
            style = f'fillcolor="#F2F2F2", color="{dim}", fontcolor="#555555"'
        if node in matrix.OFF_COURSE:
            style += ', style="rounded,filled,dashed"'
        lines.append(f'  {node} [label="{label_dot}", {style}];')
    for a, b, label in matrix.TREE_EDGES:
        label_dot = label.replace("\n", "\\n")
        dashed = ", style=dashed" if b in matrix.OFF_COURSE else ""
        if (a, b) in chosen:
            lines.append(f'  {a} -> {b} [label="{label_dot}", color="{highlight}", fontcolor="{highlight}", '
                         f'penwidth=3{dashed}];')
        else:
            lines.append(f'  {a} -> {b} [label="{label_dot}", color="{dim}", fontcolor="{dim}"{dashed}];')
    lines.append("}")
    return "\n".join(lines)
