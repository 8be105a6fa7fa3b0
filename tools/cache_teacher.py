"""`kdzoo cache-teacher` (kdzoo/commands/cache_teacher.py) as a script: the same command."""
from kdzoo.commands.cache_teacher import main

if __name__ == '__main__':
    main()
