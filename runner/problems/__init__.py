"""Problems as data: the `problem.toml` schema and the catalogue of problem folders.

    schema     one pydantic model; errors name the file and the field
    catalogue  problems/, solutions/, graders/ of one root, by id or slug
"""
