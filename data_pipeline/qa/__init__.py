"""Question/SQL pairs: business themes, column roles, the offline template generator, the LLM generator, de-duplication and the files step 2 writes."""
