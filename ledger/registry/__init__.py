"""The registry: members and their addresses (``members``, ``address``), assets with
their units, documents and operators (``assets``), sightings (``sightings``) and their
photos (``photos``). Each module lists its public names; import them from there."""
