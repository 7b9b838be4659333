"""Stage 3: pure, serialisable plans (install, migration, images, CI matrix); nothing runs here."""
