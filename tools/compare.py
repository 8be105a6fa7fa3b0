"""`kdzoo compare` (kdzoo/commands/compare.py) as a script: the same command."""
from kdzoo.commands.compare import main

if __name__ == '__main__':
    main()
