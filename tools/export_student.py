"""`kdzoo export` (kdzoo/commands/export.py) as a script: the same command."""
from kdzoo.commands.export import main

if __name__ == '__main__':
    main()
