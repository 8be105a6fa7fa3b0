"""`kdzoo analyze` (kdzoo/commands/analyze.py) as a script: the same command."""
from kdzoo.commands.analyze import main

if __name__ == '__main__':
    main()
