"""`kdzoo plug-and-play` (kdzoo/commands/plug_and_play.py) as a script: the same command."""
from kdzoo.commands.plug_and_play import main

if __name__ == '__main__':
    main()
