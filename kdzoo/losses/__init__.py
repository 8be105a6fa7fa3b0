"""kdzoo.losses: parameter-free distillation losses, ``forward(student, teacher, **ctx) -> scalar``.

Importable with torch and mmengine alone.
"""
