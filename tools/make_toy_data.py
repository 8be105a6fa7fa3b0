"""`kdzoo make-data` (kdzoo/commands/make_data.py) as a script: the same command."""
from kdzoo.commands.make_data import main

if __name__ == '__main__':
    main()
