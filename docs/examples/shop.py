import os

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from flask_stubber import StubberWebhooks

db = SQLAlchemy()
migrate = Migrate()
stubber = StubberWebhooks()


class Customer(db.Model):  # the app's own model, migrated with the stubber tables
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(255), unique=True, nullable=False)


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("DATABASE_URL", "sqlite:///shop.db")
    db.init_app(app)
    migrate.init_app(app, db)
    stubber.init_app(app)
    return app
