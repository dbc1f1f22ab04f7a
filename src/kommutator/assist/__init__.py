"""Agent assist: reply suggestions from canned responses, knowledge-base articles and past replies (docs/assist.md)."""
