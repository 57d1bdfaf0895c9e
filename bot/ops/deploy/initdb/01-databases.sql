-- The application's database and Rasa's tracker store (bot/ops/prod.py creates the same two locally).
CREATE DATABASE bot_app;
CREATE DATABASE bot_tracker;
