"""outputs: a month's entries → the files HR and agents receive.

`statement` builds the statement as data, `payroll` the per-employee money (应扣, 减免,
实扣), `privacy` masks buyers' personal data in quoted text, `workbook` writes the Excel
statement (cells, sheets, charts, pay sheets, the SpreadsheetML writer), `agents` the
per-agent statements that show nobody else's data, `rejects` the rejected rows (masked,
formula-safe for any import dialog), `outset` the writer lock and the staged, swapped-in
set, and `report` writes the month's set of files and the summary. Imports core, lang, inputs and evaluate.
"""
