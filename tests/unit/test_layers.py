"""No module of tubelab imports itself back, however indirectly (the layer contracts themselves are
checked by `lint-imports` in `make test`; within a package they cannot see a cycle)."""

import grimp


def test_no_file_level_import_cycle():
    graph = grimp.build_graph("tubelab")
    assert len(graph.modules) > 50  # the whole package was read
    cycles = [(a, b) for a in sorted(graph.modules) for b in graph.find_modules_directly_imported_by(a)
              if graph.chain_exists(importer=b, imported=a)]
    assert cycles == [], f"import cycles (module -> module that imports it back): {cycles}"
