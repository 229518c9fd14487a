"""The course's diagrams as Graphviz DOT: traditional ML versus transfer learning, and the matrix's decision tree.

Pages draw them with st.graphviz_chart; the tree's nodes and edges are data in tl_core.teaching.matrix.
"""

from __future__ import annotations

from tl_core.teaching import matrix
from ui.charts import theme


FONT = "Helvetica"
# Streamlit's graphviz element styles every text at 10.8 CSS px in the drawing's own units, whatever the DOT says,
# then scales the drawing to the page's width. So lay the text out at that size (boxes fit their text) and keep each
# drawing narrow enough to be scaled UP at 1366 px: tests/test_browser_readable.py measures the rendered size.
NODE_PT = 11  # node labels, in units of the drawing
EDGE_PT = 11  # edge labels


def traditional_vs_transfer_dot() -> str:
    """The course's diagram: traditional ML (one model per dataset) above transfer learning (knowledge flows).

    Drawn left to right, the two panels stacked in the heading's order (traditional first), with their columns
    aligned: datasets, then the models trained on them, then what transfer adds. Flat invisible edges fix the
    top-to-bottom order inside each column (tests/test_browser_readable.py checks it).

    Returns:
        A Graphviz DOT string.
    """
    data = f'shape=cylinder, style=filled, fillcolor="{theme.LIGHT}", color="{theme.BLACK}"'
    model = f'shape=box, style="rounded,filled", fillcolor="{theme.SKY}", color="{theme.BLUE}"'
    model2 = f'shape=box, style="rounded,filled", fillcolor="{theme.ORANGE}", color="{theme.VERMILLION}"'
    know = f'shape=note, style=filled, fillcolor="{theme.YELLOW}", color="{theme.BLACK}"'
    trad = [
        f'  subgraph cluster_trad {{ label="Traditional ML: every dataset starts from zero"; fontname="{FONT}"; '
        f'fontsize={NODE_PT}; color="{theme.GREY}"; labeljust=l;',
        f'    d1 [label="Dataset 1", {data}]; m1 [label="Model 1", {model}];',
        f'    d2 [label="Dataset 2", {data}]; m2 [label="Model 2", {model2}];',
        "    d1 -> m1; d2 -> m2;",
        "  }"]
    transfer = [
        f'  subgraph cluster_tl {{ label="Transfer learning: model 1\'s knowledge helps model 2"; fontname="{FONT}"; '
        f'fontsize={NODE_PT}; color="{theme.BLUE}"; labeljust=l;',
        f'    t1 [label="Dataset 1", {data}]; n1 [label="Model 1", {model}];',
        f'    k [label="Knowledge\\n(architecture + weights)", {know}, width=2.4];',
        f'    t2 [label="Dataset 2\\n(often small)", {data}]; n2 [label="Model 2", {model2}];',
        f'    t1 -> n1; n1 -> k [color="{theme.BLUE}", penwidth=2]; k -> n2 [color="{theme.BLUE}", penwidth=2];'
        " t2 -> n2;",
        "  }"]
    return "\n".join([
        "digraph tl {",
        "  rankdir=LR; nodesep=0.3; ranksep=0.6; newrank=true;",
        f'  node [fontname="{FONT}", fontsize={NODE_PT}, width=1.6, height=0.6]; edge [color="#444444"];',
        # In a left-to-right layout the cluster defined first is drawn below: transfer first puts traditional on top.
        *transfer, *trad,
        # Flat edges within a column: left to right, the tail is drawn BELOW the head, so list bottom to top.
        "  { rank=same; t1 -> d2 -> d1 [style=invis]; }  // the datasets' column: d1, d2, then t1",
        "  { rank=same; n1 -> m2 -> m1 [style=invis]; }  // the models' column: m1, m2, then n1",
        "  { rank=same; t2 -> k [style=invis]; }  // knowledge above the new, small dataset",
        "}",
    ])


def tree_dot(setting: matrix.Setting | None = None, *, highlight: str = theme.BLUE, dim: str = "#6E6E6E") -> str:
    """The course's decision tree in Graphviz DOT, drawn left to right, with the path to `setting` drawn bold.

    Left to right keeps it narrow enough for the page's width at a readable size: the questions form the first
    columns and the leaves stack in the last ones. The app's additions to the course's tree are dashed.

    Args:
        setting: The setting to highlight, or None for the plain tree.
        highlight: Colour of the chosen path and leaf.
        dim: Colour of everything else (dark enough to read: 5:1 on white).

    Returns:
        A DOT source string for st.graphviz_chart.
    """
    chosen = set(matrix.decision_path(setting)) if setting is not None else set()
    on_path = {n for edge in chosen for n in edge}
    lines = ['digraph matrix {', '  rankdir=LR; nodesep=0.12; ranksep=0.3;',
             f'  node [shape=box, style="rounded,filled", fontname="{FONT}", fontsize={NODE_PT}, '
             'margin="0.1,0.05"];',
             f'  edge [fontname="{FONT}", fontsize={EDGE_PT}];']
    for node, label in matrix.TREE_NODES.items():
        leaf = matrix.is_leaf(node)
        label_dot = label.replace("\n", "\\n")
        if node in on_path and leaf:
            style = f'fillcolor="{highlight}", fontcolor="white", color="{highlight}", penwidth=2'
        elif node in on_path:
            style = f'fillcolor="#DCEBF5", color="{highlight}", penwidth=2'
        else:
            style = f'fillcolor="#F2F2F2", color="{dim}", fontcolor="#333333"'
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
