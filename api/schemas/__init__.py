"""Request and response bodies (pydantic), apart from the tables they are stored in."""
