"""`kdzoo quickstart` (kdzoo/commands/quickstart.py) as a script: the same command."""
from kdzoo.commands.quickstart import main

if __name__ == '__main__':
    main()
