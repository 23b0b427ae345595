"""Teams: who owns work before anyone is assigned."""
