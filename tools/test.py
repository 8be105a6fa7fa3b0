"""`kdzoo test` (kdzoo/commands/test.py) as a script: the same command."""
from kdzoo.commands.test import main

if __name__ == '__main__':
    main()
