"""The sandbox handles a test holds and their command path: `DaytonaSandbox` and its async
form, the factory types, one `run` planned without I/O (`run_plan`) and the pure script
builder (`executor`, `script_text`)."""
