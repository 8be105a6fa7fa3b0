"""`kdzoo train` (kdzoo/commands/train.py) as a script: the same command."""
from kdzoo.commands.train import main

if __name__ == '__main__':
    main()
