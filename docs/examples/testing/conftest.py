import pytest
from quickstart import create_app, db


@pytest.fixture
def app(tmp_path):
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'shop.db'}",
        "SERVER_NAME": "shop.test",
    })
    with app.app_context():
        db.create_all()
        yield app
