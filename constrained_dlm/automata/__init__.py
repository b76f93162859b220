"""Automata stage, below everything: regex -> byte DFA -> token automaton, the vocabulary, and the
clock, caches and DFA operations they share. Imports nothing else of the package."""
