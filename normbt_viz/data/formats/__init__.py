"""How preference data is laid out, one module per layout family, and the mapping language that names it.

`files` reads local files (compressed, tab-separated, wrapped JSON, shard folders) into one raw table;
`mapping` is the column-mapping language (roles, dotted paths, help text) and column detection; `text`
holds explicit and implicit (whole-transcript) prompts; `messages` conversational and ShareGPT rows and
list literals stored as text; `judgments` two responses and a verdict (or two ratings); `lists` rows that
hold several answers (rankings, style variants, best-of-n) and turn into several pairs. `common` is what
they share: where a row came from and the rows a lenient load leaves out. `normbt_viz.data.sources`
puts them together behind `load_pairs`.
"""
